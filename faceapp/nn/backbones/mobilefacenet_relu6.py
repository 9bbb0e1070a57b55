"""MobileFaceNet in the MobileNetV2 layout of public MS-Celeb-1M weights (foamliu/MobileFaceNet, Apache-2.0).

The same network family as ``mobilefacenet`` (Chen et al. 2018, arXiv:1804.07573) but laid out as the
widely used public PyTorch port: ReLU6 instead of PReLU, a depthwise-separable stem block with its own
BatchNorms, a linear 1x1 projection with a bias before the final BatchNorm. Module names follow that port,
so its ``state_dict`` loads strictly (``load_state_dict(..., strict=True)``) without a key map: a structure
that does not match fails loudly instead of silently leaving layers random.

``fuse_extra`` folds the BatchNorms that are not inside a ``ConvBN`` (the port's projections, the stem's
separable block and the GDC head) so the Embedder's inference copy costs no more than ``mobilefacenet``.
Input: RGB ``(x/255 - mean) / std`` with the ImageNet mean/std (recorded in the model folder's config).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from faceapp.nn.backbones.layers import Backbone, ConvBN
from faceapp.nn.backbones.registry import check_input_size, register_backbone

# (expansion t, output channels c, repeats n, first stride s): the port's inverted_residual_setting.
PORT_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (2, 64, 5, 2),
    (4, 128, 1, 2),
    (2, 128, 6, 1),
    (4, 128, 1, 2),
    (2, 128, 2, 1),
)


class ConvBNReLU6(ConvBN):
    """Conv2d (no bias) -> BatchNorm2d -> ReLU6; a ``ConvBN`` so ``fuse_for_inference`` folds it."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, act=False)
        self.append(nn.ReLU6(inplace=True))


def _fold_pair(seq: nn.Sequential, conv_index: int, bn_index: int) -> None:
    """Fold ``seq[bn_index]`` (BatchNorm2d) into ``seq[conv_index]`` (Conv2d) in eval mode."""
    conv, bn = seq[conv_index], seq[bn_index]
    if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
        seq[conv_index] = fuse_conv_bn_eval(conv, bn)
        seq[bn_index] = nn.Identity()


class SeparableBlock(nn.Module):
    """Depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU (the port's ``dw_conv``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.depthwise(x)))
        return self.relu(self.bn2(self.pointwise(x)))

    def fuse_extra(self) -> None:
        """Fold both BatchNorms into their convolutions (eval mode only)."""
        if isinstance(self.bn1, nn.BatchNorm2d):
            self.depthwise = fuse_conv_bn_eval(self.depthwise, self.bn1)
            self.pointwise = fuse_conv_bn_eval(self.pointwise, self.bn2)
            self.bn1, self.bn2 = nn.Identity(), nn.Identity()


class InvertedResidual(nn.Module):
    """[1x1 expand ->] 3x3 depthwise (stride s) -> linear 1x1 project + BN, residual when shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = int(round(in_ch * expansion))
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNReLU6(in_ch, hidden, kernel=1))
        layers += [ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, out_ch, 1, 1, 0, bias=False), nn.BatchNorm2d(out_ch)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.use_res_connect else y

    def fuse_extra(self) -> None:
        """Fold the projection's BatchNorm into its 1x1 convolution."""
        _fold_pair(self.conv, len(self.conv) - 2, len(self.conv) - 1)


class GDConv(nn.Module):
    """Global depthwise convolution (kernel = the final map) -> BN: MobileFaceNet's learned pooling."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel, padding=0, groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.depthwise(x))

    def fuse_extra(self) -> None:
        """Fold the BatchNorm into the depthwise convolution."""
        if isinstance(self.bn, nn.BatchNorm2d):
            self.depthwise = fuse_conv_bn_eval(self.depthwise, self.bn)
            self.bn = nn.Identity()


class MobileFaceNetReLU6(Backbone):
    """MobileFaceNet, MobileNetV2 layout with ReLU6 (the public MS1M port), 1.0 M parameters at 128-d."""

    def __init__(self, embedding_dim: int = 128, input_size: int = 112) -> None:
        check_input_size(input_size)
        super().__init__(embedding_dim, input_size)
        self.conv1 = ConvBNReLU6(3, 64, stride=2)                       # 112 -> 56
        self.dw_conv = SeparableBlock(64)
        blocks: list[nn.Module] = []
        in_ch = 64
        for t, c, n, s in PORT_SETTING:
            for i in range(n):
                blocks.append(InvertedResidual(in_ch, c, s if i == 0 else 1, t))
                in_ch = c
        self.features = nn.Sequential(*blocks)
        self.conv2 = ConvBNReLU6(in_ch, 512, kernel=1)
        self.gdconv = GDConv(512, input_size // 16)
        self.conv3 = nn.Conv2d(512, embedding_dim, kernel_size=1)        # linear projection (with bias)
        self.bn = nn.BatchNorm2d(embedding_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.layout(x))
        x = self.dw_conv(x)
        x = self.features(x)
        x = self.conv2(x)
        x = self.gdconv(x)
        x = self.bn(self.conv3(x))
        return x.flatten(1)

    def fuse_extra(self) -> None:
        """Fold the embedding BatchNorm into the projection (eval mode only)."""
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv3 = fuse_conv_bn_eval(self.conv3, self.bn)
            self.bn = nn.Identity()


@register_backbone("mobilefacenet_relu6")
def mobilefacenet_relu6(embedding_dim: int = 128, input_size: int = 112) -> MobileFaceNetReLU6:
    """MobileFaceNet in the MobileNetV2/ReLU6 layout of the public MS1M weights (loads them strictly)."""
    return MobileFaceNetReLU6(embedding_dim, input_size)
