"""Building blocks shared by the backbones, and BN folding for inference.

``ConvBN`` (conv -> BatchNorm -> optional PReLU) is the unit every backbone is built from so that
``fuse_for_inference`` can fold each BatchNorm into the convolution before it (exact in eval mode,
saves one memory pass per layer on the CPU).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval


class Backbone(nn.Module):
    """Base of the registered backbones: records ``embedding_dim``/``input_size``, picks the CPU memory layout.

    On the CPU, inputs are made channels-last (NHWC) before the first conv when ``prefer_channels_last``
    is True (the default): oneDNN's convolutions, and above all their backward passes, run faster in
    that layout (measured +20-45 % training images/s per core, docs/models.md). Set the attribute to
    False to keep NCHW. On CUDA the input is left as it comes.
    """

    prefer_channels_last: bool = True

    def __init__(self, embedding_dim: int, input_size: int) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.input_size = input_size

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the memory layout this backbone computes fastest in (see the class docstring)."""
        if self.prefer_channels_last and x.dim() == 4 and x.device.type == "cpu":
            return x.contiguous(memory_format=torch.channels_last)
        return x


class ConvBN(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> PReLU (or nothing when ``act=False``, a "linear" layer)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, padding: int | None = None,
                 groups: int = 1, act: bool = True) -> None:
        pad = kernel // 2 if padding is None else padding
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, pad, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if act:
            layers.append(nn.PReLU(out_ch))
        super().__init__(*layers)


class LinearBN(nn.Sequential):
    """Linear -> BatchNorm1d: the embedding layer of the insightface heads (bias folded away by BN)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(nn.Linear(in_features, out_features, bias=False), nn.BatchNorm1d(out_features))


def init_weights(net: nn.Module) -> None:
    """Kaiming-normal (fan-in, PReLU slope 0.25) convs/linears, unit BN scale, zero biases.

    Fan-in keeps the activation scale roughly constant through the net (depthwise convs included,
    whose fan-out PyTorch overestimates by the number of groups), so even an untrained network in
    eval mode gives well-scaled, input-dependent embeddings.
    """
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0.25, mode="fan_in", nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def zero_init_last_bn(branch: nn.Module) -> None:
    """Start a residual branch at zero (last BN scale 0) so each block begins as the identity.

    Goyal et al., "Accurate, Large Minibatch SGD" (2017): stabilises early training of residual nets.
    """
    bns = [m for m in branch.modules() if isinstance(m, nn.BatchNorm2d)]
    if bns:
        nn.init.zeros_(bns[-1].weight)


def _fold(seq: nn.Sequential) -> None:
    first, second = seq[0], seq[1]
    if isinstance(first, nn.Conv2d) and isinstance(second, nn.BatchNorm2d):
        seq[0] = fuse_conv_bn_eval(first, second)
    elif isinstance(first, nn.Linear) and isinstance(second, nn.BatchNorm1d):
        seq[0] = fuse_linear_bn_eval(first, second)
    else:  # pragma: no cover - guarded by the callers' types
        return
    seq[1] = nn.Identity()


@torch.no_grad()
def fuse_for_inference(net: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Return an eval-mode copy of ``net`` with every ConvBN / LinearBN BatchNorm folded into its layer.

    The result computes the same function (up to float rounding) and is faster on the CPU, but its
    ``state_dict`` no longer matches the architecture: never save a fused net as a model folder.
    Backbones may add extra folds by defining ``fuse_extra(self)``.
    """
    out = net if inplace else copy.deepcopy(net)
    out.eval()
    for m in list(out.modules()):
        if isinstance(m, (ConvBN, LinearBN)) and isinstance(m[1], (nn.BatchNorm2d, nn.BatchNorm1d)):
            _fold(m)
    for m in list(out.modules()):
        extra = getattr(m, "fuse_extra", None)
        if callable(extra):
            extra()
    out.eval()
    return out


def prepare_for_inference(net: nn.Module, *, fuse: bool = True, channels_last: bool = True,
                          device: str | torch.device = "cpu") -> nn.Module:
    """The Embedder's optimisations: an eval-mode copy with BN folded, on ``device``, channels-last memory.

    Channels-last (NHWC) lets oneDNN run the depthwise and 3x3 convolutions without layout conversions;
    feed it inputs made ``.contiguous(memory_format=torch.channels_last)``. ``channels_last=False`` keeps
    everything NCHW (and sets the backbones' ``prefer_channels_last`` to False).
    """
    out = fuse_for_inference(net) if fuse else copy.deepcopy(net).eval()
    out = out.to(device)
    if channels_last:
        out = out.to(memory_format=torch.channels_last)
    for m in out.modules():
        if isinstance(m, Backbone):
            m.prefer_channels_last = channels_last
    return out.eval()
