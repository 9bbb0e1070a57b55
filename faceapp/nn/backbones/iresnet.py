"""Improved-residual ResNets ("IR" blocks) as in ArcFace / insightface's ``iresnet``.

J. Deng, J. Guo, N. Xue, S. Zafeiriou, "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
CVPR 2019 (arXiv:1801.07698), Sec. 4.1 / Fig. 7: the IR block BN-Conv-BN-PReLU-Conv-BN (stride on the
second conv) plus a shortcut, and the "E" output head BN-Dropout-FC-BN, on He et al.'s ResNet
("Deep Residual Learning for Image Recognition", CVPR 2016).

- ``iresnet18``: insightface's iresnet18 (stride-1 stem, stages of 2 blocks, 64..512 channels). Accurate
  but ~2.6 GMAC: far too slow for the 5 ms CPU target, kept as a reference / GPU option.
- ``resnet9``: the compact "9-conv ResNet" (one stride-2 stem conv + four IR blocks of two convs),
  channels 64-128-256-512 scaled by ``width`` (default 0.25: 16-32-64-128, ~83 MMAC, the fastest to
  train on the CPU; 0.5 doubles the channels at ~4x the cost).

The FC head needs the whole final map, so ``input_size`` must be a multiple of 16 (112, 96, 64...).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from faceapp.nn.backbones.layers import Backbone, ConvBN, LinearBN, init_weights, zero_init_last_bn
from faceapp.nn.backbones.registry import check_input_size, register_backbone


class IRBlock(nn.Module):
    """BN -> conv3x3 -> BN -> PReLU -> conv3x3 (stride) -> BN, plus a (projected) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_ch)
        self.conv1 = ConvBN(in_ch, out_ch, 3, 1)               # conv -> BN -> PReLU
        self.conv2 = ConvBN(out_ch, out_ch, 3, stride, act=False)
        self.shortcut = (ConvBN(in_ch, out_ch, 1, stride, padding=0, act=False)
                         if stride != 1 or in_ch != out_ch else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(self.bn(x))) + self.shortcut(x)


class IRHead(nn.Module):
    """The insightface "E" output: BN2d -> Dropout -> flatten -> FC -> BN1d (embedding, not normalised)."""

    def __init__(self, channels: int, final: int, embedding_dim: int, dropout: float) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.dropout = nn.Dropout(dropout)
        self.fc = LinearBN(channels * final * final, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.bn(x)).flatten(1))

    @torch.no_grad()
    def fuse_extra(self) -> None:
        """Fold the BN2d (a per-channel affine map in eval mode) into the FC that follows it."""
        bn = self.bn
        if not isinstance(bn, nn.BatchNorm2d) or self.training:
            return
        lin = self.fc[0]
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        per_channel = lin.in_features // bn.num_features
        scale = scale.repeat_interleave(per_channel)
        shift = shift.repeat_interleave(per_channel)
        fused = nn.Linear(lin.in_features, lin.out_features, bias=True)
        bias = lin.bias if lin.bias is not None else torch.zeros(lin.out_features)
        fused.weight.copy_(lin.weight * scale[None, :])
        fused.bias.copy_(bias + lin.weight @ shift)
        self.fc[0] = fused
        self.bn = nn.Identity()


class IResNet(Backbone):
    """Stem conv -> stages of IR blocks (first block of each stage strided) -> IRHead."""

    def __init__(self, embedding_dim: int = 128, input_size: int = 112, *, layers: Sequence[int] = (2, 2, 2, 2),
                 channels: Sequence[int] = (64, 128, 256, 512), strides: Sequence[int] = (2, 2, 2, 2),
                 stem_channels: int | None = None, stem_stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__(embedding_dim, input_size)
        check_input_size(input_size)
        if not len(layers) == len(channels) == len(strides):
            raise ValueError("layers, channels and strides must have the same length")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        total_stride = stem_stride
        for s in strides:
            total_stride *= s
        if input_size % total_stride:
            raise ValueError(f"input_size {input_size} is not a multiple of the total stride {total_stride}")
        stem = stem_channels or channels[0]
        self.stem = ConvBN(3, stem, 3, stem_stride)
        blocks: list[nn.Module] = []
        in_ch = stem
        for n, c, s in zip(layers, channels, strides):
            for i in range(n):
                blocks.append(IRBlock(in_ch, c, s if i == 0 else 1))
                in_ch = c
        self.blocks = nn.Sequential(*blocks)
        self.head = IRHead(in_ch, input_size // total_stride, embedding_dim, dropout)
        init_weights(self)
        for m in self.modules():
            if isinstance(m, IRBlock):
                zero_init_last_bn(m.conv2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(self.layout(x))))


def _widths(base: Sequence[int], width: float) -> tuple[int, ...]:
    if not 0.1 <= float(width) <= 4.0:
        raise ValueError(f"width must be between 0.1 and 4, got {width!r}")
    return tuple(max(8, int(round(c * width / 8.0)) * 8) for c in base)


@register_backbone("resnet9")
def resnet9(embedding_dim: int = 128, input_size: int = 112, width: float = 0.25, dropout: float = 0.0) -> IResNet:
    """Compact 9-conv IR-ResNet (ArcFace IR blocks, He et al. 2016): stride-2 stem + 4 blocks; option width."""
    ch = _widths((64, 128, 256, 512), width)
    return IResNet(embedding_dim, input_size, layers=(1, 1, 1, 1), channels=ch, strides=(1, 2, 2, 2),
                   stem_stride=2, dropout=dropout)


@register_backbone("iresnet18")
def iresnet18(embedding_dim: int = 128, input_size: int = 112, width: float = 1.0, dropout: float = 0.0) -> IResNet:
    """insightface iresnet18 (Deng et al. 2019, ArcFace): 18-layer IR-ResNet, ~2.6 GMAC; too slow for CPU live use."""
    ch = _widths((64, 128, 256, 512), width)
    return IResNet(embedding_dim, input_size, layers=(2, 2, 2, 2), channels=ch, strides=(2, 2, 2, 2),
                   stem_stride=1, dropout=dropout)
