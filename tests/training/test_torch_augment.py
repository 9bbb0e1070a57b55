"""The tensor augmenter: each operation does what it says, like the numpy one, reproducibly."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceapp.training.config import AugmentConfig
from faceapp.training.torch_augment import TorchAugmenter

OFF = vars(AugmentConfig.off())


def _batch(att: Path) -> torch.Tensor:
    imgs = [cv2.resize(cv2.imread(str(att / "s1" / f"{i}.pgm")), (112, 112)) for i in range(1, 5)]
    imgs[0][:, :, 2] = 255 - imgs[0][:, :, 2]              # some colour so greyscale is visible
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float()


def _gen(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_off_is_identity(att: Path) -> None:
    x = _batch(att)
    out = TorchAugmenter(AugmentConfig.off())(x, _gen())
    assert torch.equal(out, x) and out is not x


def test_flip_only(att: Path) -> None:
    x = _batch(att)
    assert torch.equal(TorchAugmenter(AugmentConfig(**{**OFF, "flip": 1.0}))(x, _gen()), x.flip(3))


def test_affine_without_range_is_identity_and_with_range_moves(att: Path) -> None:
    x = _batch(att)
    still = AugmentConfig(**{**OFF, "affine": 1.0, "max_scale": 0.0, "max_rotation": 0.0, "max_shift": 0.0})
    assert torch.allclose(TorchAugmenter(still)(x, _gen()), x, atol=1e-3)
    shift = AugmentConfig(**{**OFF, "affine": 1.0, "max_scale": 0.0, "max_rotation": 0.0, "max_shift": 0.1})
    moved = TorchAugmenter(shift)(x, _gen())
    diff = (moved - x).abs().mean(dim=(1, 2, 3))
    assert (diff > 1.0).all()
    # a pure shift keeps the picture: some integer offset within +-12 px matches it closely
    best = min(float((moved[0, :, 20:92, 20:92] - x[0, :, 20 + dy:92 + dy, 20 + dx:92 + dx]).abs().mean())
               for dy in range(-12, 13) for dx in range(-12, 13))
    assert best < 6.0


def test_greyscale_makes_channels_equal(att: Path) -> None:
    x = _batch(att)
    out = TorchAugmenter(AugmentConfig(**{**OFF, "grayscale": 1.0}))(x, _gen())
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])
    expected = 0.114 * x[0, 0] + 0.587 * x[0, 1] + 0.299 * x[0, 2]
    assert torch.allclose(out[0, 0], expected, atol=1e-3)


def test_blur_smooths(att: Path) -> None:
    x = _batch(att)
    out = TorchAugmenter(AugmentConfig(**{**OFF, "blur": 1.0, "blur_sigma": 1.5}))(x, _gen())
    grad = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean()       # noqa: E731
    assert grad(out) < 0.8 * grad(x)
    assert abs(float(out.mean() - x.mean())) < 1.0                  # normalised kernel keeps brightness


def test_erase_fills_one_rectangle(att: Path) -> None:
    x = _batch(att)
    out = TorchAugmenter(AugmentConfig(**{**OFF, "erase": 1.0, "erase_area": 0.15}))(x, _gen())
    for i in range(x.shape[0]):
        changed = (out[i] != x[i]).any(dim=0)
        frac = changed.float().mean().item()
        assert 0.005 < frac <= 0.16
        ys, xs = torch.nonzero(changed, as_tuple=True)
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert changed.sum() >= 0.9 * box                              # a filled rectangle, not scattered pixels


def test_photometric_stays_in_range_and_changes(att: Path) -> None:
    x = _batch(att)
    out = TorchAugmenter(AugmentConfig(**{**OFF, "color": 1.0, "brightness": 1.0}))(x, _gen())
    assert out.min() >= 0 and out.max() <= 255
    assert not torch.allclose(out, x)


def test_reproducible_from_generator_and_default_mix(att: Path) -> None:
    x = _batch(att).repeat(8, 1, 1, 1)
    aug = TorchAugmenter(AugmentConfig())
    a, b, c = aug(x, _gen(3)), aug(x, _gen(3)), aug(x, _gen(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 255
    changed = (a != x).flatten(1).any(dim=1).float().mean()
    assert 0.4 < changed < 1.0                                      # most, not all, images touched at defaults


def test_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError, match="N, 3, H, W"):
        TorchAugmenter(AugmentConfig())(torch.zeros(2, 112, 112, 3))
