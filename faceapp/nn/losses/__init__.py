"""The loss zoo of deep face recognition, by registry name.

``create_loss(name, embedding_dim=.., num_classes=.., **hparams)`` builds one; ``list_losses()`` fills
``faceapp losses`` and the GUI's combo box; ``loss_class(name).hyperparameters`` describes its form fields.
Every loss is a ``FaceLoss``: ``forward(embeddings (N, D) raw backbone output, labels (N,)) -> scalar``.
"""

from __future__ import annotations

from typing import Any, Sequence

from faceapp.nn.losses.base import LOSSES, FaceLoss, HyperParameter, LossConfigError, register_loss, resolve_hparams
from faceapp.nn.losses.classifier import AngularMarginLoss, ClassifierLoss

# Importing the family modules registers their losses.
from faceapp.nn.losses.softmax import L2SoftmaxLoss, ModifiedSoftmaxLoss, SoftmaxLoss
from faceapp.nn.losses.margins import ArcFaceLoss, CosFaceLoss, SphereFaceLoss
from faceapp.nn.losses.center import CenterLoss
from faceapp.nn.losses.ring import RingLoss
from faceapp.nn.losses.contrastive import ContrastiveLoss, DeepID2Loss, DoubleMarginContrastiveLoss
from faceapp.nn.losses.siamese import SiameseVerificationLoss
from faceapp.nn.losses.triplet import TripletLoss


def loss_class(name: str) -> type[FaceLoss]:
    """The class registered as ``name``; LossConfigError listing the known names otherwise."""
    try:
        return LOSSES.get(name).factory  # type: ignore[return-value]
    except KeyError as error:
        raise LossConfigError(str(error.args[0])) from None


def create_loss(name: str, *, embedding_dim: int, num_classes: int, **hparams: Any) -> FaceLoss:
    """Build the loss ``name`` for ``embedding_dim``-D embeddings of ``num_classes`` identities.

    ``hparams`` override the defaults in ``loss_class(name).hyperparameters`` (values may be text, as
    from ``--loss-param k=v``); unknown names or out-of-range values raise LossConfigError.
    """
    return loss_class(name)(embedding_dim=embedding_dim, num_classes=num_classes, **hparams)


def list_losses() -> dict[str, str]:
    """Registered loss name -> one-line summary."""
    return LOSSES.describe()


def describe_losses() -> list[dict[str, Any]]:
    """Every loss as a JSON-friendly dict: name, summary, flags and hyper-parameters (CLI ``--json``, GUI)."""
    return [
        {
            "name": name,
            "summary": summary,
            "needs_classes": loss_class(name).needs_classes,
            "requires_pk_sampler": loss_class(name).requires_pk_sampler,
            "hyperparameters": [h.to_dict() for h in loss_class(name).hyperparameters],
        }
        for name, summary in list_losses().items()
    ]


def parse_loss_params(name: str, items: Sequence[str]) -> dict[str, Any]:
    """``["m=0.5", "s=32"]`` (CLI ``--loss-param``) -> converted, range-checked values for loss ``name``."""
    cls = loss_class(name)
    given: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LossConfigError(f"--loss-param {item!r}: expected NAME=VALUE, e.g. m=0.5")
        given[key.strip()] = value.strip()
    return resolve_hparams(cls, given, defaults=False)


__all__ = [
    "LOSSES", "FaceLoss", "HyperParameter", "LossConfigError", "register_loss", "ClassifierLoss",
    "AngularMarginLoss", "SoftmaxLoss", "ModifiedSoftmaxLoss", "L2SoftmaxLoss", "SphereFaceLoss",
    "CosFaceLoss", "ArcFaceLoss", "CenterLoss", "RingLoss", "ContrastiveLoss", "DoubleMarginContrastiveLoss",
    "DeepID2Loss", "SiameseVerificationLoss", "TripletLoss", "loss_class", "create_loss", "list_losses", "describe_losses",
    "parse_loss_params",
]
