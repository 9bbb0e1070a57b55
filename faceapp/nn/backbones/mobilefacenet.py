"""MobileFaceNet: S. Chen, Y. Liu, X. Gao, Z. Han, "MobileFaceNets: Efficient CNNs for Accurate Real-Time
Face Verification on Mobile Devices", CCBR 2018 (arXiv:1804.07573).

Inverted-residual (MobileNetV2) bottlenecks with PReLU, and a global depthwise convolution ("GDC", a
learned per-channel weighting of the final 7x7 map) instead of global average pooling, followed by a
linear 1x1 conv to the embedding and BatchNorm. ``width`` scales every channel count (rounded to a
multiple of 8); ``input_size`` may be any multiple of 16 (112, 96, 64...): the GDC kernel follows it.
"""

from __future__ import annotations

import torch
from torch import nn

from faceapp.nn.backbones.layers import Backbone, ConvBN, init_weights, zero_init_last_bn
from faceapp.nn.backbones.registry import check_input_size, register_backbone

# (expansion t, output channels c, repeats n, first stride s), Table 1 of the paper.
PAPER_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (2, 64, 5, 2),
    (4, 128, 1, 2),
    (2, 128, 6, 1),
    (4, 128, 1, 2),
    (2, 128, 2, 1),
)


def _scaled(channels: int, width: float) -> int:
    return max(8, int(round(channels * width / 8.0)) * 8)


class Bottleneck(nn.Module):
    """1x1 expand -> 3x3 depthwise (stride s) -> linear 1x1 project, residual when shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_ch * expansion
        self.residual = stride == 1 and in_ch == out_ch
        self.body = nn.Sequential(
            ConvBN(in_ch, hidden, 1),
            ConvBN(hidden, hidden, 3, stride, groups=hidden),
            ConvBN(hidden, out_ch, 1, act=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileFaceNet(Backbone):
    """MobileFaceNet (Chen et al. 2018): depthwise bottlenecks + GDC head, ~1M params at width 1."""

    def __init__(self, embedding_dim: int = 128, input_size: int = 112, width: float = 1.0,
                 last_channels: int = 512, setting: tuple[tuple[int, int, int, int], ...] = PAPER_SETTING) -> None:
        check_input_size(input_size)
        if not 0.1 <= float(width) <= 4.0:
            raise ValueError(f"width must be between 0.1 and 4, got {width!r}")
        super().__init__(embedding_dim, input_size)
        stem = _scaled(64, width)
        layers: list[nn.Module] = [
            ConvBN(3, stem, 3, 2),                       # 112 -> 56
            ConvBN(stem, stem, 3, 1, groups=stem),       # depthwise 3x3
        ]
        in_ch = stem
        for t, c, n, s in setting:
            out_ch = _scaled(c, width)
            for i in range(n):
                layers.append(Bottleneck(in_ch, out_ch, s if i == 0 else 1, t))
                in_ch = out_ch
        last = _scaled(last_channels, width)
        layers.append(ConvBN(in_ch, last, 1))
        self.features = nn.Sequential(*layers)
        final = input_size // 16
        self.gdc = ConvBN(last, last, final, 1, padding=0, groups=last, act=False)   # linear GDConv
        self.embedding = ConvBN(last, embedding_dim, 1, act=False)                   # linear 1x1 conv + BN
        init_weights(self)
        for m in self.modules():
            if isinstance(m, Bottleneck) and m.residual:
                zero_init_last_bn(m.body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.layout(x))
        x = self.gdc(x)
        x = self.embedding(x)
        return x.flatten(1)


@register_backbone("mobilefacenet")
def mobilefacenet(embedding_dim: int = 128, input_size: int = 112, width: float = 1.0) -> MobileFaceNet:
    """MobileFaceNet (Chen et al. 2018): depthwise bottlenecks + global depthwise conv head; option width."""
    return MobileFaceNet(embedding_dim, input_size, width)
