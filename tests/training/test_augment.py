"""Augmentation: each operation does what it says, reproducibly from the generator."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from faceapp.training.augment import Augmenter
from faceapp.training.config import AugmentConfig


def _batch(att: Path) -> np.ndarray:
    imgs = [cv2.resize(cv2.imread(str(att / "s1" / f"{i}.pgm")), (112, 112)) for i in range(1, 5)]
    imgs[0][:, :, 2] = 255 - imgs[0][:, :, 2]              # some colour so greyscale is visible
    return np.stack(imgs)


def test_off_is_identity(att: Path) -> None:
    batch = _batch(att)
    out = Augmenter(AugmentConfig.off())(batch, np.random.default_rng(0))
    assert np.array_equal(out, batch) and out is not batch


def test_flip_only(att: Path) -> None:
    batch = _batch(att)
    out = Augmenter(AugmentConfig(**{**vars(AugmentConfig.off()), "flip": 1.0}))(batch, np.random.default_rng(0))
    assert np.array_equal(out, batch[:, :, ::-1])


def test_greyscale_only(att: Path) -> None:
    batch = _batch(att)
    out = Augmenter(AugmentConfig(**{**vars(AugmentConfig.off()), "grayscale": 1.0}))(batch, np.random.default_rng(0))
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert not (batch[0, ..., 0] == batch[0, ..., 2]).all()


def test_all_ops_reproducible_and_change_pixels(att: Path) -> None:
    batch = _batch(att)
    config = AugmentConfig(flip=0.5, affine=1, color=1, brightness=1, grayscale=0.5, blur=1, erase=1)
    aug = Augmenter(config)
    a = aug(batch, np.random.default_rng(7))
    b = aug(batch, np.random.default_rng(7))
    assert np.array_equal(a, b) and a.dtype == np.uint8 and a.shape == batch.shape
    assert all(not np.array_equal(a[i], batch[i]) for i in range(len(batch)))
