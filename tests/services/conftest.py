"""Fixtures for the enrolment/gallery service tests: the real MediaPipe pipeline (one per session),
small real embedders, AT&T faces and a fresh SQLite store per test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceapp.capture.images import read_image
from faceapp.embedding import Embedder
from faceapp.storage import Store
from faceapp.vision.pipeline import FacePipeline


@pytest.fixture(scope="session")
def pipeline(mediapipe_models: Path) -> FacePipeline:
    with FacePipeline("image", model_dir=mediapipe_models) as opened:
        assert not opened.fallback_active, "the MediaPipe face landmarker must load for these tests"
        yield opened


@pytest.fixture(scope="session")
def tiny_embedder() -> Embedder:
    """A small untrained network (deterministic): fast, real torch inference, not a recogniser."""
    return Embedder.untrained(backbone="tiny", embedding_dim=32, device="cpu")


@pytest.fixture(scope="session")
def other_embedder() -> Embedder:
    """Another model (different weights and size) for re-embedding and dimension tests."""
    return Embedder.untrained(backbone="tiny", embedding_dim=24, seed=7, device="cpu")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "gallery.db") as opened:
        yield opened


@pytest.fixture(scope="session")
def att_image(att: Path):
    """``att_image(subject, number)`` -> BGR image of AT&T ``s<subject>/<number>.pgm``."""

    def load(subject: int, number: int) -> np.ndarray:
        return read_image(att / f"s{subject}" / f"{number}.pgm")

    return load
