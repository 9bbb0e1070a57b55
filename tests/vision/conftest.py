"""Fixtures for vision tests: one FaceLandmarker pipeline per session, and CFP helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from faceapp.capture.images import read_image
from faceapp.vision.pipeline import FacePipeline


@pytest.fixture(scope="session")
def pipeline(mediapipe_models: Path) -> Iterator[FacePipeline]:
    """An IMAGE-mode landmarker pipeline shared by the vision tests (loading one costs ~0.2 s)."""
    with FacePipeline("image", model_dir=mediapipe_models, fallback=False) as pipe:
        yield pipe


@pytest.fixture(scope="session")
def turned_pipeline(mediapipe_models: Path) -> Iterator[FacePipeline]:
    """The same pipeline warping turned heads onto the turned template (``template="turned"``)."""
    with FacePipeline("image", model_dir=mediapipe_models, fallback=False, template="turned") as pipe:
        yield pipe


def cfp_frontal(cfp: Path, person: int, number: int) -> tuple[np.ndarray, np.ndarray]:
    """A CFP frontal image and its 30 hand-labelled fiducials (x, y)."""
    image = read_image(cfp / "Data" / "Images" / f"{person:03d}" / "frontal" / f"{number:02d}.jpg")
    fiducials = np.loadtxt(cfp / "Data" / "Fiducials" / f"{person:03d}" / "frontal" / f"{number:02d}.txt", delimiter=",")
    return image, fiducials


def cfp_usable(image: np.ndarray) -> bool:
    """The shared CFP copy downscaled 157 frontal images to a 400 px longest side without rescaling
    their fiducials (they stay in the original pixel frame): those cannot serve as ground truth."""
    return max(image.shape[:2]) != 400


@pytest.fixture(scope="session")
def cfp_sample(cfp: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """40 CFP frontal images with usable fiducials, spread over all 500 people (fixed choice)."""
    out = []
    for person in range(1, 501, 12):
        for number in (1, 6):
            image, fiducials = cfp_frontal(cfp, person, number)
            if cfp_usable(image):
                out.append((f"{person:03d}/{number:02d}", image, fiducials))
                break
    assert len(out) >= 40, f"too few usable CFP images under {cfp}"
    return out[:40]
