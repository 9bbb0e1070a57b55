"""The "one-to-many" augmentation of ``augment.Augmenter`` as batched tensor operations, for the GPU.

On a GPU the numpy/OpenCV augmenter (one image at a time on the CPU) feeds a few thousand crops a second,
far below what the accelerator trains on; this one runs the same operations with the same
``AugmentConfig`` probabilities and ranges on the whole batch where it lives (any torch device):
horizontal flip, affine jitter (rotation, zoom, shift; reflected borders), per-channel colour gain,
brightness/contrast, greyscale, Gaussian blur and random erasing (noise-filled rectangle).

Input and output: float (N, 3, H, W) in 0..255, channels in BGR order (as the crops are stored).
Randomness comes only from the ``torch.Generator`` passed in (on the batch's device).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from faceapp.training.config import AugmentConfig

_GREY_BGR = (0.114, 0.587, 0.299)


class TorchAugmenter:
    """Applies the enabled operations of ``config`` to a float BGR batch (N, 3, H, W) in 0..255 (new tensor)."""

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (N, 3, H, W) batch, got shape {tuple(x.shape)}")
        c = self.config
        n = x.shape[0]
        if n == 0:
            return x.clone()

        def uniform(*shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
            return torch.rand(*shape, device=x.device, generator=generator) * (high - low) + low

        def fire(p: float) -> torch.Tensor:
            return uniform(n) < p

        flip, affine, color, bright, grey, blur, erase = (fire(p) for p in
                                                          (c.flip, c.affine, c.color, c.brightness, c.grayscale,
                                                           c.blur, c.erase))
        out = x.float()
        out = torch.where(flip.view(n, 1, 1, 1), out.flip(3), out)
        if c.affine > 0:
            out = self._affine(out, affine, uniform)
        if c.color > 0 or c.brightness > 0:
            gains = 1.0 + uniform(n, 3, 1, 1, low=-c.color_strength, high=c.color_strength)
            gains = torch.where(color.view(n, 1, 1, 1), gains, torch.ones_like(gains))
            contrast = 1.0 + uniform(n, 1, 1, 1, low=-c.brightness_strength, high=c.brightness_strength)
            offset = uniform(n, 1, 1, 1, low=-c.brightness_strength, high=c.brightness_strength) * 255.0
            on = bright.view(n, 1, 1, 1)
            contrast = torch.where(on, contrast, torch.ones_like(contrast))
            offset = torch.where(on, offset, torch.zeros_like(offset))
            mean = out.mean(dim=(1, 2, 3), keepdim=True)
            out = ((out * gains - mean) * contrast + mean + offset).clamp(0.0, 255.0)
        if c.grayscale > 0:
            w = torch.tensor(_GREY_BGR, device=x.device, dtype=out.dtype).view(1, 3, 1, 1)
            g = (out * w).sum(dim=1, keepdim=True).expand_as(out)
            out = torch.where(grey.view(n, 1, 1, 1), g, out)
        if c.blur > 0:
            out = torch.where(blur.view(n, 1, 1, 1), self._blur(out, uniform), out)
        if c.erase > 0:
            out = self._erase(out, erase, uniform)
        return out

    def _affine(self, x: torch.Tensor, on: torch.Tensor, uniform) -> torch.Tensor:
        c = self.config
        n = x.shape[0]
        angle = uniform(n, low=-c.max_rotation, high=c.max_rotation) * (math.pi / 180.0)
        scale = 1.0 + uniform(n, low=-c.max_scale, high=c.max_scale)
        shift = uniform(n, 2, low=-c.max_shift, high=c.max_shift) * 2.0      # normalised coordinates span 2
        angle = torch.where(on, angle, torch.zeros_like(angle))
        scale = torch.where(on, scale, torch.ones_like(scale))
        shift = torch.where(on.view(n, 1), shift, torch.zeros_like(shift))
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # theta maps output to input coordinates: the inverse of zoom by ``scale``, rotation and shift
        theta = torch.stack([torch.stack([cos, -sin, -(cos * shift[:, 0] - sin * shift[:, 1])], 1),
                             torch.stack([sin, cos, -(sin * shift[:, 0] + cos * shift[:, 1])], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        moved = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return torch.where(on.view(n, 1, 1, 1), moved, x)

    def _blur(self, x: torch.Tensor, uniform) -> torch.Tensor:
        n, ch, h, w = x.shape
        max_sigma = max(0.31, self.config.blur_sigma)
        radius = int(math.ceil(3 * max_sigma))
        sigma = uniform(n, low=0.3, high=max_sigma).view(n, 1)
        taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype).view(1, -1)
        kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
        kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(ch, dim=0)     # (n*ch, k)
        y = x.reshape(1, n * ch, h, w)
        y = F.pad(y, (radius, radius, radius, radius), mode="reflect")
        y = F.conv2d(y, kernel.view(n * ch, 1, 1, -1), groups=n * ch)
        y = F.conv2d(y, kernel.view(n * ch, 1, -1, 1), groups=n * ch)
        return y.view(n, ch, h, w)

    def _erase(self, x: torch.Tensor, on: torch.Tensor, uniform) -> torch.Tensor:
        n, _, h, w = x.shape
        area = uniform(n, low=0.02, high=max(0.021, self.config.erase_area)) * h * w
        ratio = torch.exp(uniform(n, low=math.log(0.3), high=math.log(3.3)))
        eh = torch.sqrt(area * ratio).round().clamp(max=h)
        ew = torch.sqrt(area / ratio).round().clamp(max=w)
        top = (uniform(n) * (h - eh + 1)).floor()
        left = (uniform(n) * (w - ew + 1)).floor()
        rows = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
        cols = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
        inside = ((rows >= top.view(n, 1, 1)) & (rows < (top + eh).view(n, 1, 1))
                  & (cols >= left.view(n, 1, 1)) & (cols < (left + ew).view(n, 1, 1)) & on.view(n, 1, 1))
        noise = (uniform(n, 3, h, w) * 256.0).floor().clamp(max=255.0)
        return torch.where(inside.unsqueeze(1), noise, x)
