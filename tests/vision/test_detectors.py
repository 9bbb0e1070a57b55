"""Fallback detectors (BlazeFace keypoints, OpenCV Haar) and how the pipeline falls back to them visibly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceapp.capture.images import read_image
from faceapp.core.errors import ModelAssetError
from faceapp.core.types import Detector
from faceapp.vision.assets import LANDMARKER
from faceapp.vision.pipeline import FacePipeline


@pytest.fixture(scope="module")
def photos(celeba: Path) -> list[np.ndarray]:
    return [read_image(p) for p in sorted(celeba.glob("*/*.jpg"))[::400][:12]]


@pytest.mark.parametrize("detector,tolerance", [("blazeface", 0.25), ("haar", 0.35)])
def test_fallback_points_are_close_to_the_landmarker(pipeline: FacePipeline, photos: list[np.ndarray],
                                                     detector: str, tolerance: float) -> None:
    """Median distance of the estimated five points from the landmarker's, in inter-ocular units.
    Measured on 383 (BlazeFace) / 339 (Haar) CelebA photos when fitting the estimates."""
    errors = []
    with FacePipeline("image", detector=detector) as fallback:
        assert fallback.fallback_active and fallback.detector.value == detector
        for image in photos:
            reference = pipeline.detect(image)
            found = fallback.detect(image)
            if not reference or not found:
                continue
            ref = reference[0].five_points
            iod = np.linalg.norm(ref[1] - ref[0])
            # match by position, in case the fallback also saw a background face
            best = min(found, key=lambda f: np.linalg.norm(f.five_points.mean(0) - ref.mean(0)))
            assert best.detector is Detector(detector) and best.is_fallback
            assert best.landmarks is None and best.pose is None and best.quality is not None
            errors.append(np.median(np.linalg.norm(best.five_points - ref, axis=1)) / iod)
    assert len(errors) >= 8
    assert np.median(errors) < tolerance, errors


def test_corrupt_landmarker_falls_back_to_blazeface_and_says_why(mediapipe_models: Path, tmp_path: Path,
                                                                 photos: list[np.ndarray]) -> None:
    broken = tmp_path / LANDMARKER
    broken.write_bytes((mediapipe_models / LANDMARKER).read_bytes()[:50_000])
    with FacePipeline("image", model_dir=tmp_path) as pipe:
        assert pipe.fallback_active and pipe.detector is Detector.BLAZEFACE
        assert str(broken) in (pipe.fallback_reason or "")
        faces = pipe.detect(photos[0])
        assert faces and faces[0].detector is Detector.BLAZEFACE
    with pytest.raises(ModelAssetError, match=str(broken)):
        FacePipeline("image", model_dir=tmp_path, fallback=False)


def test_no_mediapipe_models_at_all_falls_back_to_haar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       photos: list[np.ndarray]) -> None:
    monkeypatch.setenv("FACEAPP_MODEL_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("FACEAPP_DATA_DIR", str(tmp_path / "data"))
    with FacePipeline("video", allow_download=False) as pipe:
        assert pipe.detector is Detector.HAAR and pipe.fallback_active
        assert "face_landmarker.task" in pipe.fallback_reason and "face_detection_short_range" in pipe.fallback_reason
        assert any(pipe.detect(image) for image in photos[:4])
    with pytest.raises(ModelAssetError, match="not found"):
        FacePipeline("image", allow_download=False, fallback=False)


def test_video_mode_blazeface(photos: list[np.ndarray]) -> None:
    with FacePipeline("video", detector="blazeface") as pipe:
        results = [pipe.detect(photos[1], timestamp_ms=t) for t in (0, 40, 80)]
    assert all(r and r[0].detector is Detector.BLAZEFACE for r in results)
