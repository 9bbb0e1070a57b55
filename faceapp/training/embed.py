"""The net being trained as an embedding function: crops -> tensors exactly as a model folder preprocesses
them (the training hot path), and crops -> unit vectors with the net as it is now (per-epoch validation,
scored by ``faceapp.data.evaluate``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from faceapp.data.evaluate import EmbedFn
from faceapp.embedding.model_folder import ModelConfig, normalize_bgr, preprocess


def crops_to_tensor(batch: np.ndarray, config: ModelConfig) -> torch.Tensor:
    """BGR uint8 (N, H, W, 3) -> normalised RGB float (N, 3, S, S), exactly as ``model_folder.preprocess``
    (vectorised when no resize is needed: the training hot path)."""
    if batch.shape[1] != config.input_size or batch.shape[2] != config.input_size:
        return preprocess(batch, config)
    return normalize_bgr(torch.from_numpy(np.asarray(batch)).permute(0, 3, 1, 2).float(), config)


def make_embed_fn(net: nn.Module, config: ModelConfig, device: str = "cpu", *, flip_tta: bool = False) -> EmbedFn:
    """A function crops -> L2-normalised embeddings with ``net`` as it is now (call under eval mode)."""

    def embed(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = crops_to_tensor(batch, config).to(device)
            y = net(x).float()
            if flip_tta:
                y = y + net(x.flip(3)).float()
            return torch.nn.functional.normalize(y, dim=1).cpu().numpy()

    return embed
