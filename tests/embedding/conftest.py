"""Fixtures for the embedding tests: real face crops and small saved model folders."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
import torch

from faceapp.embedding.model_folder import ModelConfig, save_model
from faceapp.nn.backbones import create_backbone


@pytest.fixture(scope="session")
def real_crops(datasets: Path) -> np.ndarray:
    """Eight real CelebA aligned-and-cropped faces (celeba_lowres), resized to 112x112 BGR uint8."""
    paths = sorted((datasets / "celeba_lowres").glob("*/*.jpg"))[:8]
    assert len(paths) == 8, f"celeba_lowres images not found under {datasets}"
    crops = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        assert img is not None, f"cannot read {p}"
        crops.append(cv2.resize(img, (112, 112), interpolation=cv2.INTER_LINEAR))
    return np.stack(crops)


@pytest.fixture
def make_folder(tmp_path: Path) -> Callable[..., tuple[Path, torch.nn.Module, ModelConfig]]:
    """Save a seeded backbone as a model folder; returns (folder, net, config)."""

    def make(name: str = "m", backbone: str = "tiny", dim: int = 32, seed: int = 0, card: dict | None = None,
             **kwargs) -> tuple[Path, torch.nn.Module, ModelConfig]:
        torch.manual_seed(seed)
        net = create_backbone(backbone, embedding_dim=dim, **kwargs).eval()
        config = ModelConfig(name=name, backbone=backbone, embedding_dim=dim, backbone_kwargs=dict(kwargs))
        folder = save_model(tmp_path / f"{name}-{seed}", net, config,
                            card if card is not None else {"trained": True, "loss": "arcface", "metrics": {"cfp_ff": 0.5}})
        return folder, net, config

    return make
