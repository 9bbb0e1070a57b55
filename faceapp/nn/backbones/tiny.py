"""``tiny``: a four-conv network for tests and smoke runs (trains in seconds, not a recogniser).

Strided 3x3 conv -> BN -> PReLU blocks, global average pooling, linear embedding + BN. Any input size
of at least 16 pixels works (pooling is global).
"""

from __future__ import annotations

import torch
from torch import nn

from faceapp.nn.backbones.layers import Backbone, ConvBN, LinearBN, init_weights
from faceapp.nn.backbones.registry import register_backbone


class TinyNet(Backbone):
    """Four strided conv blocks + global average pool + Linear/BN embedding."""

    def __init__(self, embedding_dim: int = 128, input_size: int = 112, width: int = 16) -> None:
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 16:
            raise ValueError(f"input_size must be an integer of at least 16, got {input_size!r}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}")
        super().__init__(embedding_dim, input_size)
        w = width
        self.features = nn.Sequential(
            ConvBN(3, w, 3, 2), ConvBN(w, 2 * w, 3, 2), ConvBN(2 * w, 4 * w, 3, 2), ConvBN(4 * w, 4 * w, 3, 2),
        )
        self.embedding = LinearBN(4 * w, embedding_dim)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.layout(x)).mean(dim=(2, 3))
        return self.embedding(x)


@register_backbone("tiny")
def tiny(embedding_dim: int = 128, input_size: int = 112, width: int = 16) -> TinyNet:
    """Tiny 4-conv net for tests and smoke runs (trains in seconds; not a face recogniser)."""
    return TinyNet(embedding_dim, input_size, width)
