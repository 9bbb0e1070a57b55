"""The loss contract: ``FaceLoss`` (an ``nn.Module`` taking ``(embeddings, labels)``), its typed
hyper-parameters (GUI form fields and ``--loss-param k=v``), and the ``LOSSES`` registry.

Every loss computes in float32 with autocast switched off, whatever precision the backbone ran in, so
margins (``acos``, ``cos(m*theta)``, square roots) stay accurate and finite under mixed precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn

from faceapp.core.errors import ExitCode, FaceAppError
from faceapp.core.registry import Registry

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class LossConfigError(FaceAppError, ValueError):
    """A loss name, hyper-parameter or input shape is wrong; the message names it and the allowed values."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class HyperParameter:
    """One tunable setting of a loss: its type is the type of ``default`` (float, int, bool or str)."""

    name: str
    default: float | int | bool | str
    min: float | None = None
    max: float | None = None
    help: str = ""
    choices: tuple[str, ...] = ()

    @property
    def kind(self) -> type:
        """The Python type values are converted to."""
        return type(self.default)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (``faceapp losses --json``, GUI form building)."""
        return {"name": self.name, "type": self.kind.__name__, "default": self.default, "min": self.min,
                "max": self.max, "help": self.help, "choices": list(self.choices)}

    def coerce(self, value: Any, owner: str = "loss") -> float | int | bool | str:
        """``value`` (a number, a bool or the text of ``--loss-param``) converted and range-checked."""
        where = f"{owner}: hyper-parameter {self.name!r}"
        kind = self.kind
        try:
            if kind is bool:
                converted: Any = _to_bool(value)
            elif kind is int:
                number = float(value)
                if not number.is_integer():
                    raise ValueError
                converted = int(number)
            elif kind is float:
                if isinstance(value, bool):
                    raise ValueError
                converted = float(value)
            else:
                converted = str(value)
        except (TypeError, ValueError):
            raise LossConfigError(f"{where} must be a {kind.__name__}, got {value!r}") from None
        if self.choices and converted not in self.choices:
            raise LossConfigError(f"{where} must be one of {', '.join(self.choices)}; got {value!r}")
        if kind in (int, float):
            if converted != converted:  # NaN
                raise LossConfigError(f"{where} must be a number, got {value!r}")
            low = -float("inf") if self.min is None else self.min
            high = float("inf") if self.max is None else self.max
            if not low <= converted <= high:
                raise LossConfigError(f"{where} = {converted} is outside [{self.min}, {self.max}]")
        return converted


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(value)


class FaceLoss(nn.Module):
    """Base of every loss: validates inputs, runs ``compute`` in float32, records ``last_terms``.

    Subclasses declare ``hyperparameters`` and implement ``compute(embeddings, labels)``; the
    constructor validates keyword hyper-parameters against the declaration and stores them in
    ``self.hparams``. Any parameters a loss owns (classifier weights, centres' classifier, ring radius,
    siamese weights) are ordinary ``nn.Parameter``s: optimise ``backbone.parameters()`` together with
    ``loss.parameters()`` in one optimiser.
    """

    registry_name: ClassVar[str] = ""
    requires_pk_sampler: ClassVar[bool] = False   # pair/triplet losses need P identities x K images batches
    needs_classes: ClassVar[bool] = False         # owns a classifier over num_classes identities
    hyperparameters: ClassVar[list[HyperParameter]] = []

    def __init__(self, embedding_dim: int, num_classes: int = 0, **hparams: Any) -> None:
        super().__init__()
        owner = self.registry_name or type(self).__name__
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise LossConfigError(f"{owner}: embedding_dim must be a positive integer, got {embedding_dim!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise LossConfigError(f"{owner}: num_classes must be a non-negative integer, got {num_classes!r}")
        if self.needs_classes and num_classes < 2:
            raise LossConfigError(f"{owner}: needs num_classes >= 2 identities, got {num_classes}")
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes
        self.hparams: dict[str, Any] = resolve_hparams(type(self), hparams)
        self._terms: dict[str, Tensor | float] = {}

    # -- the contract -------------------------------------------------------------------------------
    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Scalar loss of a batch of raw backbone outputs ``(N, D)`` with identity labels ``(N,)``."""
        self._check_inputs(embeddings, labels)
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            return self.compute(embeddings.float(), labels.long())

    def compute(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The loss in float32; subclasses implement it and call ``record`` for their terms."""
        raise NotImplementedError

    def on_step(self, step: int) -> None:
        """Called by the trainer before each optimisation step (schedules); default: nothing."""

    @property
    def last_terms(self) -> dict[str, float]:
        """Components of the last computed loss (e.g. ``{"ce": .., "center": ..}``) for plots."""
        return {k: float(v.item()) if isinstance(v, Tensor) else float(v) for k, v in self._terms.items()}

    def record(self, **terms: Tensor | float) -> None:
        """Remember detached loss components; converted to floats only when ``last_terms`` is read."""
        self._terms = {k: v.detach() if isinstance(v, Tensor) else v for k, v in terms.items()}

    def extra_repr(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.hparams.items())
        return f"embedding_dim={self.embedding_dim}, num_classes={self.num_classes}" + (
            f", {params}" if params else ""
        )

    # -- helpers ------------------------------------------------------------------------------------
    def _check_inputs(self, embeddings: Tensor, labels: Tensor) -> None:
        owner = self.registry_name or type(self).__name__
        if embeddings.dim() != 2 or embeddings.shape[1] != self.embedding_dim:
            raise LossConfigError(
                f"{owner}: embeddings must have shape (N, {self.embedding_dim}), got {tuple(embeddings.shape)}"
            )
        if labels.dim() != 1 or labels.shape[0] != embeddings.shape[0]:
            raise LossConfigError(
                f"{owner}: labels must have shape ({embeddings.shape[0]},), got {tuple(labels.shape)}"
            )
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise LossConfigError(f"{owner}: labels must be integers, got {labels.dtype}")
        if self.needs_classes and labels.numel():
            low, high = int(labels.min()), int(labels.max())
            if low < 0 or high >= self.num_classes:
                raise LossConfigError(
                    f"{owner}: labels must lie in [0, {self.num_classes - 1}], got values in [{low}, {high}]"
                )


def resolve_spec(hyperparameters: list[HyperParameter], given: dict[str, Any], owner: str, *,
                 defaults: bool = True) -> dict[str, Any]:
    """Defaults of ``hyperparameters`` overridden by ``given``, converted and range-checked (``defaults=False``:
    only the given ones); LossConfigError naming ``owner`` for an unknown name. Shared by losses and distillers."""
    spec = {h.name: h for h in hyperparameters}
    unknown = sorted(set(given) - set(spec))
    if unknown:
        known = ", ".join(spec) or "none"
        raise LossConfigError(f"{owner}: unknown hyper-parameter(s) {', '.join(unknown)}; known: {known}")
    return {
        name: h.coerce(given.get(name, h.default), owner) for name, h in spec.items() if defaults or name in given
    }


def resolve_hparams(cls: type[FaceLoss], given: dict[str, Any], *, defaults: bool = True) -> dict[str, Any]:
    """Defaults of ``cls.hyperparameters`` overridden by ``given``, converted and range-checked
    (``defaults=False``: only the given ones)."""
    return resolve_spec(cls.hyperparameters, given, cls.registry_name or cls.__name__, defaults=defaults)


def class_registrar(registry: Registry[Any]) -> Callable[[str], Callable[[type], type]]:
    """``register_x(name)`` for ``registry``: a class decorator registering the class and remembering the name
    on it (``cls.registry_name``). The loss zoo and the distillers both register this way."""
    def register(name: str) -> Callable[[type], type]:
        def decorate(cls: type) -> type:
            cls.registry_name = name
            registry.register(name)(cls)
            return cls

        return decorate

    return register


LOSSES: Registry[FaceLoss] = Registry("loss")
register_loss = class_registrar(LOSSES)
register_loss.__doc__ = "Class decorator: register a ``FaceLoss`` subclass under ``name`` and remember the name on it."


def zero_loss(embeddings: Tensor) -> Tensor:
    """A zero that stays connected to the graph (a batch with nothing to learn from still back-propagates)."""
    return embeddings.sum() * 0.0
