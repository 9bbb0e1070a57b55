""""One-to-many" augmentation of aligned 112x112 BGR uint8 crops with OpenCV and numpy.

Each operation fires per image with its own probability from ``AugmentConfig``. Randomness comes only
from the ``numpy.random.Generator`` passed in, so the training loop makes a batch's augmentation a pure
function of (seed, step) and a resumed run sees the same images.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceapp.training.config import AugmentConfig

_GREY = np.array([0.114, 0.587, 0.299], dtype=np.float32)      # BGR luma weights


class Augmenter:
    """Applies the enabled operations of ``config`` to a batch ``(N, H, W, 3)`` uint8 (a new array)."""

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config

    @property
    def enabled(self) -> bool:
        c = self.config
        return any(p > 0 for p in (c.flip, c.affine, c.color, c.brightness, c.grayscale, c.blur, c.erase))

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.array(batch, dtype=np.uint8, copy=True)
        if not self.enabled or out.shape[0] == 0:
            return out
        c = self.config
        n = out.shape[0]

        def fire(p: float) -> np.ndarray:
            return rng.random(n) < p

        # draw every decision up front (in a fixed order) so results do not depend on which ops fired
        flip, affine, color, bright, grey, blur, erase = (fire(p) for p in
                                                          (c.flip, c.affine, c.color, c.brightness, c.grayscale, c.blur, c.erase))
        if flip.any():
            out[flip] = out[flip, :, ::-1]
        for i in np.flatnonzero(affine):
            out[i] = self._affine(out[i], rng)
        if color.any() or bright.any():
            out = self._photometric(out, color, bright, rng)
        if grey.any():
            g = (out[grey].astype(np.float32) @ _GREY).round().clip(0, 255).astype(np.uint8)
            out[grey] = g[..., None]
        for i in np.flatnonzero(blur):
            sigma = rng.uniform(0.3, max(0.31, c.blur_sigma))
            out[i] = cv2.GaussianBlur(out[i], (0, 0), sigmaX=sigma)
        for i in np.flatnonzero(erase):
            self._erase(out[i], rng)
        return out

    def _affine(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        h, w = img.shape[:2]
        angle = rng.uniform(-c.max_rotation, c.max_rotation)
        scale = 1.0 + rng.uniform(-c.max_scale, c.max_scale)
        tx, ty = rng.uniform(-c.max_shift, c.max_shift, size=2) * (w, h)
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
        m[:, 2] += (tx, ty)
        return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)

    def _photometric(self, out: np.ndarray, color: np.ndarray, bright: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
        c = self.config
        n = out.shape[0]
        gains = 1.0 + rng.uniform(-c.color_strength, c.color_strength, size=(n, 1, 1, 3))
        gains[~color] = 1.0
        contrast = 1.0 + rng.uniform(-c.brightness_strength, c.brightness_strength, size=(n, 1, 1, 1))
        offset = rng.uniform(-c.brightness_strength, c.brightness_strength, size=(n, 1, 1, 1)) * 255.0
        contrast[~bright], offset[~bright] = 1.0, 0.0
        rows = color | bright
        x = out[rows].astype(np.float32)
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x = (x * gains[rows] - mean) * contrast[rows] + mean + offset[rows]
        out[rows] = np.clip(x, 0, 255).round().astype(np.uint8)
        return out

    def _erase(self, img: np.ndarray, rng: np.random.Generator) -> None:
        h, w = img.shape[:2]
        area = rng.uniform(0.02, max(0.021, self.config.erase_area)) * h * w
        ratio = np.exp(rng.uniform(np.log(0.3), np.log(3.3)))
        eh = int(min(h, round(np.sqrt(area * ratio))))
        ew = int(min(w, round(np.sqrt(area / ratio))))
        y = int(rng.integers(0, h - eh + 1))
        x = int(rng.integers(0, w - ew + 1))
        img[y:y + eh, x:x + ew] = rng.integers(0, 256, size=(eh, ew, 3), dtype=np.uint8)
