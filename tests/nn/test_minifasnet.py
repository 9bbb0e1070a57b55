"""MiniFASNet: our module loads the published Silent-Face-Anti-Spoofing weights strictly."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from faceapp.core.errors import IncompatibleError, NotFoundError
from faceapp.nn.backbones.minifasnet import (create_pad_backbone, list_pad_backbones, load_pad_state,
                                             strip_data_parallel)

PAD = Path(__file__).resolve().parents[2].parent / "shared" / "pad_models"
FILES = {"minifasnet_v2": "2.7_80x80_MiniFASNetV2.pth", "minifasnet_v1se": "4_0_0_80x80_MiniFASNetV1SE.pth"}


@pytest.mark.parametrize("name", sorted(FILES))
def test_published_weights_load_strictly_and_every_key_is_used(name: str) -> None:
    state = torch.load(PAD / FILES[name], map_location="cpu", weights_only=True)
    assert all(k.startswith("module.") for k in state), "the published files carry DataParallel's prefix"
    net = create_pad_backbone(name)
    load_pad_state(net, state, what=FILES[name])
    ours = net.state_dict()
    assert set(ours) == {k[len("module."):] for k in state}
    for key, value in strip_data_parallel(state).items():
        assert torch.equal(ours[key], value), key


def test_the_prefixed_state_does_not_load_without_stripping() -> None:
    state = torch.load(PAD / FILES["minifasnet_v2"], map_location="cpu", weights_only=True)
    with pytest.raises(RuntimeError, match="Missing key"):
        create_pad_backbone("minifasnet_v2").load_state_dict(state, strict=True)


def test_wrong_architecture_is_refused_naming_the_file() -> None:
    state = torch.load(PAD / FILES["minifasnet_v1se"], map_location="cpu", weights_only=True)
    with pytest.raises(IncompatibleError, match="v1se.pth|MiniFASNetV1SE.pth"):
        load_pad_state(create_pad_backbone("minifasnet_v2"), state, what=FILES["minifasnet_v1se"])


def test_mixed_prefixes_are_refused() -> None:
    with pytest.raises(IncompatibleError, match="module."):
        strip_data_parallel(OrderedDict([("module.a", torch.zeros(1)), ("b", torch.zeros(1))]))


def test_folding_batchnorm_keeps_the_output() -> None:
    state = torch.load(PAD / FILES["minifasnet_v1se"], map_location="cpu", weights_only=True)
    net = load_pad_state(create_pad_backbone("minifasnet_v1se"), state, what="v1se").eval()
    x = torch.rand(2, 3, 80, 80) * 255
    with torch.no_grad():
        before = torch.softmax(net(x), 1)
        after = torch.softmax(net.fold_batchnorm()(x), 1)
    assert torch.allclose(before, after, atol=1e-4)


def test_registry_lists_both_and_refuses_unknown_names() -> None:
    assert set(list_pad_backbones()) == set(FILES)
    with pytest.raises(NotFoundError, match="minifasnet_v2"):
        create_pad_backbone("minifasnet_v9")
