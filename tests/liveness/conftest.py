"""Liveness fixtures: the real PAD scorer, real MediaPipe pipelines, NUAA images and the blink videos."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from faceapp.liveness.passive import PassiveScorer
from faceapp.vision.pipeline import FacePipeline


@pytest.fixture(scope="session")
def nuaa(datasets: Path) -> Path:
    root = datasets / "nuaa_pad"
    assert (root / "live").is_dir(), f"NUAA PAD set not found at {root}"
    return root


@pytest.fixture(scope="session")
def blink_videos(datasets: Path) -> Path:
    return datasets / "blink_videos"


@pytest.fixture(scope="session")
def scorer() -> PassiveScorer:
    return PassiveScorer()


@pytest.fixture(scope="session")
def still_pipeline(mediapipe_models: Path) -> Iterator[FacePipeline]:
    with FacePipeline("image", model_dir=mediapipe_models, fallback=False) as pipe:
        yield pipe


def nuaa_files(nuaa: Path, kind: str, subject: str, count: int) -> list[Path]:
    """``count`` images of one subject and kind, spread over the session (every k-th file)."""
    files = sorted((nuaa / kind / subject).glob("*.jpg"))
    step = max(1, len(files) // count)
    return files[::step][:count]
