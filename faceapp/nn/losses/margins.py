"""Large-margin softmax losses on the hypersphere: SphereFace (A-softmax), CosFace, ArcFace.

All three use a bias-free classifier with normalised weights and change only the target-class logit;
margins are computed in float32 (the base class switches autocast off).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from faceapp.nn.losses.base import HyperParameter, register_loss
from faceapp.nn.losses.classifier import AngularMarginLoss


def chebyshev_cos_multiple(cos: Tensor, m: int) -> Tensor:
    """``cos(m theta)`` as the Chebyshev polynomial ``T_m(cos theta)`` (smooth in ``cos``, no acos)."""
    previous, current = torch.ones_like(cos), cos
    if m == 0:
        return previous
    for _ in range(m - 1):
        previous, current = current, 2 * cos * current - previous
    return current


def sphereface_psi(cos: Tensor, m: int) -> Tensor:
    """``psi(theta) = (-1)^k cos(m theta) - 2k`` for ``theta in [k pi/m, (k+1) pi/m]``: monotonically
    decreasing on [0, pi], equal to ``cos(m theta)`` on [0, pi/m]."""
    with torch.no_grad():
        theta = torch.acos(cos.clamp(-1.0, 1.0))
        k = torch.floor(m * theta / math.pi).clamp(0, m - 1)
        sign = 1.0 - 2.0 * torch.remainder(k, 2)
    return sign * chebyshev_cos_multiple(cos, m) - 2.0 * k


def sphereface_lambda(step: int, base: float, gamma: float, power: float, minimum: float) -> float:
    """The annealing weight of the SphereFace code: ``max(min, base * (1 + gamma * step) ** -power)``."""
    return max(minimum, base * (1.0 + gamma * step) ** (-power))


@register_loss("sphereface")
class SphereFaceLoss(AngularMarginLoss):
    """SphereFace A-softmax: multiplicative angular margin m, annealed from the modified softmax.

    ``L = -log( e^{f_y} / (e^{f_y} + sum_{j != y} e^{|x| cos theta_j}) )`` with the target logit
    ``f_y = |x| (lambda cos theta_y + psi(theta_y)) / (1 + lambda)`` and ``psi(theta) = (-1)^k cos(m theta) - 2k`` on ``[k pi/m, (k+1) pi/m]`` (normalised W, no bias).
    ``lambda = max(lambda_min, lambda_base (1 + lambda_gamma * step)^(-lambda_power))`` starts near the
    plain modified softmax and decays so training converges (the SphereFace Caffe code's schedule).
    ``on_step(step)`` sets the step; in training mode each forward also advances it by one.
    Reference: Liu et al., "SphereFace: Deep Hypersphere Embedding for Face Recognition", CVPR 2017.
    """

    hyperparameters = [
        HyperParameter("m", 4, 1, 8, "integer multiplicative angular margin (1 = modified softmax)"),
        HyperParameter("lambda_base", 1000.0, 0.0, 1e6, "initial weight of cos(theta) in the target logit"),
        HyperParameter("lambda_gamma", 0.12, 0.0, 10.0, "annealing speed gamma"),
        HyperParameter("lambda_power", 1.0, 0.0, 10.0, "annealing power"),
        HyperParameter("lambda_min", 5.0, 0.0, 1e6, "floor of lambda (0 = the pure A-softmax)"),
    ]

    def __init__(self, embedding_dim: int, num_classes: int = 0, **hparams) -> None:
        super().__init__(embedding_dim, num_classes, **hparams)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @property
    def lam(self) -> float:
        """The current annealing weight lambda."""
        h = self.hparams
        return sphereface_lambda(int(self.step), h["lambda_base"], h["lambda_gamma"], h["lambda_power"], h["lambda_min"])

    def on_step(self, step: int) -> None:
        self.step.fill_(int(step))

    def target_cosine(self, cos_target: Tensor) -> Tensor:
        lam = self.lam
        return (lam * cos_target + sphereface_psi(cos_target, self.hparams["m"])) / (1.0 + lam)

    def compute(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        lam = self.lam
        ce = self.cross_entropy(embeddings, labels)
        self.record(ce=ce, **{"lambda": lam})
        if self.training:
            self.step += 1
        return ce


@register_loss("cosface")
class CosFaceLoss(AngularMarginLoss):
    """CosFace / large-margin cosine loss: additive cosine margin m, scale s.

    ``L = -log( e^{s (cos theta_y - m)} / (e^{s (cos theta_y - m)} + sum_{j != y} e^{s cos theta_j}) )``
    with normalised features and weights, no bias.
    Reference: Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition", CVPR 2018.
    """

    hyperparameters = [
        HyperParameter("s", 64.0, 1.0, 256.0, "scale (radius of the feature hypersphere)"),
        HyperParameter("m", 0.35, 0.0, 1.0, "additive cosine margin"),
    ]

    def row_scale(self, embeddings: Tensor) -> float:
        return self.hparams["s"]

    def target_cosine(self, cos_target: Tensor) -> Tensor:
        return cos_target - self.hparams["m"]


@register_loss("arcface")
class ArcFaceLoss(AngularMarginLoss):
    """ArcFace / additive angular margin: target logit s cos(theta_y + m), m in radians, scale s.

    ``L = -log( e^{s cos(theta_y + m)} / (e^{s cos(theta_y + m)} + sum_{j != y} e^{s cos theta_j}) )``.
    Where ``theta_y + m > pi`` the target becomes ``cos theta_y - m sin m`` so the logit keeps decreasing
    with the angle (insightface's ``th``/``mm``); with ``easy_margin`` the margin applies only where
    ``cos theta_y > 0``.
    Reference: Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019.
    """

    hyperparameters = [
        HyperParameter("s", 64.0, 1.0, 256.0, "scale (radius of the feature hypersphere)"),
        HyperParameter("m", 0.5, 0.0, 1.5, "additive angular margin in radians (0.5 rad = 28.6 degrees)"),
        HyperParameter("easy_margin", False, help="apply the margin only where cos(theta_y) > 0"),
    ]

    def row_scale(self, embeddings: Tensor) -> float:
        return self.hparams["s"]

    def target_cosine(self, cos_target: Tensor) -> Tensor:
        m = self.hparams["m"]
        sin_target = torch.sqrt((1.0 - cos_target * cos_target).clamp_min(1e-7))
        with_margin = cos_target * math.cos(m) - sin_target * math.sin(m)   # cos(theta + m)
        if self.hparams["easy_margin"]:
            return torch.where(cos_target > 0, with_margin, cos_target)
        return torch.where(cos_target >= math.cos(math.pi - m), with_margin, cos_target - m * math.sin(m))
