"""Quality measures and the enrolment gate: reasons and live hints on real photos made worse on purpose."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceapp.capture.images import read_image
from faceapp.core.types import Face, FaceQuality
from faceapp.vision.pipeline import FacePipeline
from faceapp.vision.quality import QualityGate, crop_brightness, crop_sharpness

GATE = QualityGate()


@pytest.fixture(scope="module")
def good_photo(pipeline: FacePipeline, celeba: Path) -> np.ndarray:
    """The first CelebA photo (by name) the default gate accepts."""
    for path in sorted(celeba.glob("*/*.jpg"))[:40]:
        image = read_image(path)
        faces = pipeline.detect(image)
        if faces and GATE.accepts(faces[0]):
            return image
    raise AssertionError("no CelebA photo among the first 40 passes the default gate")


def _main_face(pipeline: FacePipeline, image: np.ndarray) -> Face:
    faces = pipeline.detect(image)
    assert faces, "face lost after the edit"
    return faces[0]


def test_measures_are_filled_and_plausible(pipeline: FacePipeline, good_photo: np.ndarray) -> None:
    q = _main_face(pipeline, good_photo).quality
    assert q is not None
    assert 15 < q.interocular < 200 and q.face_size > 2 * q.interocular
    assert q.sharpness > 0 and 0 < q.brightness < 255
    assert q.yaw is not None and q.pitch is not None and q.roll is not None


def test_blur_is_rejected_with_hold_still(pipeline: FacePipeline, good_photo: np.ndarray) -> None:
    face = _main_face(pipeline, cv2.GaussianBlur(good_photo, (0, 0), 2.0))
    assert any(r.startswith("blurred") for r in GATE.check(face))
    assert "hold still" in GATE.hints(face)


def test_dark_and_bright_are_rejected(pipeline: FacePipeline, good_photo: np.ndarray) -> None:
    dark = _main_face(pipeline, (good_photo * 0.2).astype(np.uint8))
    assert any(r.startswith("too dark") for r in GATE.check(dark)) and "too dark" in GATE.hints(dark)
    bright = _main_face(pipeline, cv2.convertScaleAbs(good_photo, alpha=1.0, beta=140))
    assert any(r.startswith("too bright") for r in GATE.check(bright)) and "too bright" in GATE.hints(bright)


def test_small_face_asks_to_move_closer(pipeline: FacePipeline, good_photo: np.ndarray) -> None:
    iod = _main_face(pipeline, good_photo).quality.interocular
    factor = 0.8 * GATE.min_interocular / iod              # eyes 16 px apart
    # the whole photo shrunk (the short-range detector misses faces under ~1/8 of a larger frame)
    face = _main_face(pipeline, cv2.resize(good_photo, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA))
    assert any(r.startswith("face too small") for r in GATE.check(face))
    assert GATE.hints(face)[0] == "move closer"


def test_turned_head_gets_a_direction(pipeline: FacePipeline, cfp: Path) -> None:
    face = _main_face(pipeline, read_image(cfp / "Data" / "Images" / "003" / "profile" / "01.jpg"))
    yaw = face.quality.yaw
    assert abs(yaw) > GATE.max_yaw
    assert any("yaw" in r for r in GATE.check(face))
    assert ("turn slightly right" if yaw > 0 else "turn slightly left") in GATE.hints(face)


def _synthetic(**quality: float) -> Face:
    base = dict(face_size=150.0, interocular=60.0, sharpness=300.0, brightness=120.0, yaw=0.0, pitch=0.0, roll=0.0)
    base.update(quality)
    return Face(box=(0, 0, 150, 150), five_points=np.zeros((5, 2), np.float32), quality=FaceQuality(**base))


def test_hint_rules() -> None:
    assert GATE.check(_synthetic()) == [] and GATE.hints(_synthetic()) == []
    assert GATE.hints(_synthetic(yaw=40.0)) == ["turn slightly right"]       # turned to their left
    assert GATE.hints(_synthetic(yaw=-40.0)) == ["turn slightly left"]
    assert GATE.hints(_synthetic(pitch=35.0)) == ["look at the camera"]
    assert GATE.hints(_synthetic(roll=-30.0)) == ["look at the camera"]
    assert QualityGate(max_interocular=100).hints(_synthetic(interocular=150.0)) == ["move back"]
    no_pose = _synthetic(yaw=None, pitch=None, roll=None)      # fallback detectors give no pose
    assert GATE.check(no_pose) == []
    relaxed = QualityGate(min_sharpness=None, min_interocular=None)
    assert relaxed.check(_synthetic(sharpness=1.0, interocular=5.0)) == []


def test_gate_needs_measured_faces() -> None:
    with pytest.raises(ValueError, match="quality"):
        GATE.check(Face(box=(0, 0, 1, 1), five_points=np.zeros((5, 2), np.float32)))


def test_crop_measures_on_synthetic_crops() -> None:
    flat = np.full((112, 112, 3), 77, np.uint8)
    assert crop_sharpness(flat) == 0.0 and crop_brightness(flat) == pytest.approx(77.0)
    edges = flat.copy()
    edges[:, ::2] = 200
    assert crop_sharpness(edges) > 1000
