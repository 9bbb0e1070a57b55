"""MiniFASNet: the small presentation-attack (liveness) classifiers of Silent-Face-Anti-Spoofing.

Our own definition of the network described by minivision-ai/Silent-Face-Anti-Spoofing (Apache-2.0): a
pruned MobileFaceNet (channel widths given by a ``keep`` list), a global depthwise conv over the final
5x5 map (80 / 16, the upstream ``get_kernel``), a 128-d
linear + BN "embedding" and a bias-free 3-way classifier. Module names follow the published
``state_dict`` so its weights load with ``strict=True`` (``load_pad_state`` strips the ``module.``
prefix that ``nn.DataParallel`` left on the published files).

Input: (N, 3, 80, 80) **BGR float in 0..255** (no scaling: the upstream ``to_tensor`` was changed not to
divide by 255). Output: logits over 3 classes; softmax class 1 is "live", 0 and 2 are attack kinds.

These are classifiers, not embedding backbones, so they live in their own registry (``PAD_BACKBONES``):
the embedding registry's names fill the Trainer's backbone list, and a liveness net does not belong there.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from faceapp.core.errors import IncompatibleError, NotFoundError
from faceapp.core.registry import Registry

PAD_BACKBONES: Registry[nn.Module] = Registry("pad backbone")

#: channel widths of the pruned nets ("1.8M" for V1/V1SE, "1.8M_" for V2), as published
KEEP_V1 = (32, 32, 103, 103, 64, 13, 13, 64, 26, 26, 64, 13, 13, 64, 52, 52, 64, 231, 231, 128, 154, 154, 128, 52,
           52, 128, 26, 26, 128, 52, 52, 128, 26, 26, 128, 26, 26, 128, 308, 308, 128, 26, 26, 128, 26, 26, 128,
           512, 512)
KEEP_V2 = (32, 32, 103, 103, 64, 13, 13, 64, 13, 13, 64, 13, 13, 64, 13, 13, 64, 231, 231, 128, 231, 231, 128, 52,
           52, 128, 26, 26, 128, 77, 77, 128, 26, 26, 128, 26, 26, 128, 308, 308, 128, 26, 26, 128, 26, 26, 128,
           512, 512)
LIVE_CLASS = 1


class ConvBlock(nn.Module):
    """conv (no bias) -> BN -> PReLU, or without the PReLU when ``act=False`` (a "linear" block)."""

    def __init__(self, in_c: int, out_c: int, kernel: int = 1, stride: int = 1, padding: int = 0, groups: int = 1,
                 act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(out_c)
        if act:
            self.prelu = nn.PReLU(out_c)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.prelu(x) if self.act else x

    @torch.no_grad()
    def fold(self) -> None:
        """Fold the (eval-mode) BatchNorm into the conv: same function, one memory pass less."""
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv = fuse_conv_bn_eval(self.conv.eval(), self.bn.eval())
            self.bn = nn.Identity()


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with BN after both 1x1 convs (as published)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = channels // reduction
        self.fc1 = nn.Conv2d(channels, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.fc2 = nn.Conv2d(mid, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3), keepdim=True)
        w = torch.relu(self.bn1(self.fc1(w)))
        return x * torch.sigmoid(self.bn2(self.fc2(w)))


class DepthWise(nn.Module):
    """1x1 expand -> 3x3 depthwise (stride) -> 1x1 linear project, optional residual and SE on the branch."""

    def __init__(self, c_in: int, c_mid: int, c_dw: int, c_out: int, *, stride: int, residual: bool,
                 se: bool = False) -> None:
        super().__init__()
        self.conv = ConvBlock(c_in, c_mid)
        self.conv_dw = ConvBlock(c_mid, c_dw, 3, stride, 1, groups=c_mid)
        self.project = ConvBlock(c_dw, c_out, act=False)
        self.residual = residual
        if se:
            self.se_module = SqueezeExcite(c_out)
        self.se = se

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        if not self.residual:
            return y
        if self.se:
            y = self.se_module(y)
        return x + y


class _Stage(nn.Module):
    """A run of residual depthwise blocks under ``.model`` (the published key layout); SE on the last one."""

    def __init__(self, keep: Sequence[int], start: int, blocks: int, se: bool) -> None:
        super().__init__()
        layers = []
        for i in range(blocks):
            k = start + 3 * i
            layers.append(DepthWise(keep[k], keep[k + 1], keep[k + 2], keep[k + 3], stride=1, residual=True,
                                    se=se and i == blocks - 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MiniFASNet(nn.Module):
    """Pruned MobileFaceNet classifier: 80x80 BGR (0..255) -> ``num_classes`` logits (class 1 = live)."""

    def __init__(self, keep: Sequence[int], *, se: bool, num_classes: int = 3, embedding_size: int = 128,
                 input_size: int = 80) -> None:
        super().__init__()
        if len(keep) != 49:
            raise ValueError(f"keep must list 49 channel widths, got {len(keep)}")
        if input_size != 80:
            raise ValueError(f"input_size must be 80 (the published weights' 5x5 head), got {input_size}")
        self.input_size = input_size
        self.num_classes = num_classes
        self.conv1 = ConvBlock(3, keep[0], 3, 2, 1)
        self.conv2_dw = ConvBlock(keep[0], keep[1], 3, 1, 1, groups=keep[1])
        self.conv_23 = DepthWise(keep[1], keep[2], keep[3], keep[4], stride=2, residual=False)
        self.conv_3 = _Stage(keep, 4, 4, se)
        self.conv_34 = DepthWise(keep[16], keep[17], keep[18], keep[19], stride=2, residual=False)
        self.conv_4 = _Stage(keep, 19, 6, se)
        self.conv_45 = DepthWise(keep[37], keep[38], keep[39], keep[40], stride=2, residual=False)
        self.conv_5 = _Stage(keep, 40, 2, se)
        self.conv_6_sep = ConvBlock(keep[46], keep[47])
        self.conv_6_dw = ConvBlock(keep[47], keep[48], (input_size + 15) // 16, 1, 0, groups=keep[48], act=False)
        self.linear = nn.Linear(512, embedding_size, bias=False)
        self.bn = nn.BatchNorm1d(embedding_size)
        self.drop = nn.Dropout(0.0)
        self.prob = nn.Linear(embedding_size, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in (self.conv1, self.conv2_dw, self.conv_23, self.conv_3, self.conv_34, self.conv_4, self.conv_45,
                      self.conv_5, self.conv_6_sep, self.conv_6_dw):
            x = stage(x)
        x = self.bn(self.linear(x.flatten(1)))
        return self.prob(self.drop(x))

    @torch.no_grad()
    def fold_batchnorm(self) -> "MiniFASNet":
        """Fold every conv block's BN into its conv (eval-mode inference only; the state_dict changes shape)."""
        self.eval()
        for module in self.modules():
            if isinstance(module, ConvBlock):
                module.fold()
        return self


def _factory(keep: Sequence[int], se: bool) -> Callable[..., MiniFASNet]:
    def build(num_classes: int = 3, input_size: int = 80) -> MiniFASNet:
        return MiniFASNet(keep, se=se, num_classes=num_classes, input_size=input_size)
    return build


PAD_BACKBONES.register("minifasnet_v2", summary="MiniFASNetV2 (Silent-Face-Anti-Spoofing): 80x80, 0.43 M params, "
                       "no SE")(_factory(KEEP_V2, se=False))
PAD_BACKBONES.register("minifasnet_v1se", summary="MiniFASNetV1SE (Silent-Face-Anti-Spoofing): 80x80, 0.41 M params, "
                       "squeeze-excitation in the residual stages")(_factory(KEEP_V1, se=True))


def create_pad_backbone(name: str, **kwargs: int) -> MiniFASNet:
    """Build the PAD classifier registered as ``name``; NotFoundError listing the known ones."""
    if name not in PAD_BACKBONES:
        raise NotFoundError(f"unknown PAD network {name!r}; known: {', '.join(PAD_BACKBONES.names())}")
    return PAD_BACKBONES.create(name, **kwargs)


def list_pad_backbones() -> dict[str, str]:
    """name -> one-line summary of the registered PAD classifiers."""
    return PAD_BACKBONES.describe()


def strip_data_parallel(state: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """``state`` without the ``module.`` prefix ``nn.DataParallel`` puts on every key (all keys or none)."""
    keys = list(state)
    prefixed = [k.startswith("module.") for k in keys]
    if all(prefixed):
        return OrderedDict((k[len("module."):], v) for k, v in state.items())
    if any(prefixed):
        raise IncompatibleError("state_dict mixes keys with and without the 'module.' prefix")
    return OrderedDict(state)


def load_pad_state(net: nn.Module, state: Mapping[str, torch.Tensor], *, what: str) -> nn.Module:
    """Load ``state`` into ``net`` strictly (after ``strip_data_parallel``); IncompatibleError naming ``what``
    and the first mismatched keys otherwise."""
    try:
        net.load_state_dict(strip_data_parallel(state), strict=True)
    except RuntimeError as exc:
        text = " ".join(str(exc).split())
        raise IncompatibleError(f"{what} does not fit {type(net).__name__}: {text[:500]}", path=what) from exc
    return net
