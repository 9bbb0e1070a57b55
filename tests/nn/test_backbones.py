"""Backbone registry and networks: shapes, gradients, input sizes, options, BN folding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faceapp.core.errors import IncompatibleError, NotFoundError
from faceapp.nn.backbones import BACKBONES, create_backbone, fuse_for_inference, list_backbones, prepare_for_inference

ALL = ["iresnet18", "mobilefacenet", "mobilefacenet_relu6", "resnet9", "tiny"]


def _randomise_bn(net: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms (fresh nets have mean 0 / var 1 / zero gammas)."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return net


def test_registry_lists_the_backbones_with_summaries() -> None:
    described = list_backbones()
    assert sorted(described) == ALL
    assert all(summary.strip() for summary in described.values())
    assert "Chen" in described["mobilefacenet"]


@pytest.mark.parametrize("name", ALL)
def test_output_shape_and_every_parameter_gets_a_gradient(name: str) -> None:
    # Train mode: the graph the trainer uses. A BN bias feeding straight into another train-mode BN gets an
    # exactly zero gradient (the next batch mean removes it), so connectivity is checked in eval mode too.
    torch.manual_seed(0)
    net = _randomise_bn(create_backbone(name, embedding_dim=64)).train()
    x = torch.randn(4, 3, 112, 112)
    y = net(x)
    assert y.shape == (4, 64)
    y.pow(2).sum().backward()
    assert sum(p.grad is not None and bool(torch.any(p.grad != 0)) for p in net.parameters()) > 0.9 * len(list(net.parameters()))
    net.zero_grad(set_to_none=True)
    net.eval()
    x = torch.randn(2, 3, 112, 112)
    y = net(x)
    assert y.shape == (2, 64)
    assert y.dtype == torch.float32
    (y ** 2).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and (p.grad is None or not torch.any(p.grad != 0))]
    assert not missing, f"{name}: parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", ALL)
def test_embedding_dim_option(name: str) -> None:
    net = create_backbone(name, embedding_dim=512).eval()
    with torch.inference_mode():
        assert net(torch.randn(1, 3, 112, 112)).shape == (1, 512)


@pytest.mark.parametrize("name", ["mobilefacenet", "resnet9", "iresnet18", "tiny"])
@pytest.mark.parametrize("size", [96, 64])
def test_lower_input_sizes(name: str, size: int) -> None:
    net = create_backbone(name, embedding_dim=32, input_size=size).eval()
    with torch.inference_mode():
        assert net(torch.randn(2, 3, size, size)).shape == (2, 32)


@pytest.mark.parametrize("name", ["mobilefacenet", "resnet9", "iresnet18"])
def test_unsupported_input_size_is_a_clear_error(name: str) -> None:
    with pytest.raises(IncompatibleError, match="input_size 100"):
        create_backbone(name, input_size=100)


def test_unknown_backbone_lists_known_names() -> None:
    with pytest.raises(NotFoundError, match="known backbones: iresnet18, mobilefacenet, mobilefacenet_relu6, resnet9, tiny"):
        create_backbone("resnet1000")


def test_unknown_option_and_bad_dim_are_clear_errors() -> None:
    with pytest.raises(IncompatibleError, match="colour"):
        create_backbone("tiny", colour="red")
    with pytest.raises(IncompatibleError, match="embedding_dim"):
        create_backbone("tiny", embedding_dim=0)
    with pytest.raises(IncompatibleError, match="width"):
        create_backbone("mobilefacenet", width=0.0)


def test_resolved_kwargs_fill_the_defaults() -> None:
    from faceapp.nn.backbones import resolved_kwargs

    assert resolved_kwargs("resnet9") == {"width": 0.25, "dropout": 0.0}
    assert resolved_kwargs("mobilefacenet", width=0.5) == {"width": 0.5}
    with pytest.raises(IncompatibleError, match="depth"):
        resolved_kwargs("tiny", depth=3)
    with pytest.raises(NotFoundError, match="known backbones"):      # as create_backbone, so save_model reports it
        resolved_kwargs("nope")


def test_width_scales_the_network() -> None:
    def params(net: nn.Module) -> int:
        return sum(p.numel() for p in net.parameters())

    assert params(create_backbone("mobilefacenet", width=0.5)) < params(create_backbone("mobilefacenet")) / 2
    assert params(create_backbone("resnet9", width=0.25)) < params(create_backbone("resnet9", width=0.5)) / 2


@pytest.mark.parametrize("name", ALL)
def test_cpu_layout_choice_does_not_change_the_function(name: str) -> None:
    torch.manual_seed(2)
    net = _randomise_bn(create_backbone(name, embedding_dim=32)).eval()
    assert net.prefer_channels_last is True
    x = torch.randn(2, 3, 112, 112)
    assert net.layout(x).is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        nhwc = net(x)
        net.prefer_channels_last = False
        assert net.layout(x) is x
        nchw = net(x)
    assert torch.allclose(nhwc, nchw, rtol=1e-4, atol=1e-4 * float(nchw.abs().max()))
    net.prefer_channels_last = True
    assert prepare_for_inference(net, channels_last=False).prefer_channels_last is False
    assert prepare_for_inference(net).prefer_channels_last is True


def test_same_seed_same_weights() -> None:
    torch.manual_seed(3)
    a = create_backbone("mobilefacenet")
    torch.manual_seed(3)
    b = create_backbone("mobilefacenet")
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


@pytest.mark.parametrize("name", ALL)
def test_bn_folding_keeps_the_function_and_the_original(name: str) -> None:
    torch.manual_seed(1)
    net = _randomise_bn(create_backbone(name, embedding_dim=64)).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fused = fuse_for_inference(net)
    n_bn = sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in net.modules())
    n_bn_fused = sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in fused.modules())
    assert n_bn_fused < n_bn / 2, "most BatchNorms should be folded"
    x = torch.randn(3, 3, 112, 112)
    with torch.inference_mode():
        y, yf = net(x), fused(x)
    assert torch.allclose(y, yf, rtol=1e-4, atol=1e-4 * float(y.abs().max())), float((y - yf).abs().max())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()), "the original net was modified"
    assert len(BACKBONES) == len(ALL)
