"""Classifier heads shared by the softmax-family losses.

``LinearClassifier``: ``W x + b`` (plain softmax, center loss, ring loss, L2-softmax, DeepID2).
``CosineClassifier``: ``cos(theta_j) = W_j . x / (|W_j| |x|)`` with no bias (modified softmax, SphereFace,
CosFace, ArcFace). Weights are ``(num_classes, embedding_dim)`` like ``nn.Linear`` so that row ``j`` is the
direction of class ``j`` (what the loss-geometry view draws).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LinearClassifier(nn.Linear):
    """Affine classifier ``W x + b`` over ``num_classes`` identities (PyTorch's default init)."""

    def __init__(self, embedding_dim: int, num_classes: int, bias: bool = True) -> None:
        super().__init__(embedding_dim, num_classes, bias=bias)


class CosineClassifier(nn.Module):
    """Cosine of the angle between each embedding and each class weight; both normalised, no bias."""

    def __init__(self, embedding_dim: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, embeddings: Tensor) -> Tensor:
        """``(N, C)`` cosines in [-1, 1], computed in float32."""
        x = F.normalize(embeddings.float(), dim=1)
        w = F.normalize(self.weight.float(), dim=1)
        return (x @ w.t()).clamp(-1.0, 1.0)
