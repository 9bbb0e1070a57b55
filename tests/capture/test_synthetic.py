"""Synthetic test videos built from dataset photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceapp.capture.images import read_image
from faceapp.capture.synthetic import face_video_frames, place_on_canvas, write_video
from faceapp.core.errors import InputFileError


def test_face_video_frames_are_640x480_and_move(celeba: Path) -> None:
    face = read_image(sorted(celeba.glob("*/*.jpg"))[0])
    frames = list(face_video_frames(face, n_frames=8, motion_px=10))
    assert len(frames) == 8 and all(f.shape == (480, 640, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[2])
    # the photo fills 80% of the height, centred: the middle pixel comes from the photo, the corner is background
    assert tuple(place_on_canvas(face)[0, 0]) == (96, 96, 96)


def test_mjpg_avi_round_trip(tmp_path: Path, celeba: Path) -> None:
    face = read_image(sorted(celeba.glob("*/*.jpg"))[1])
    frames = list(face_video_frames(face, n_frames=5))
    path = write_video(frames, tmp_path / "clip.avi", fps=30.0)
    capture = cv2.VideoCapture(str(path))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    ok, first = capture.read()
    capture.release()
    assert ok and first.shape == (480, 640, 3)
    assert np.abs(first.astype(int) - frames[0].astype(int)).mean() < 4.0     # MJPG is lossy but close


def test_write_video_without_frames_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no frames"):
        write_video([], tmp_path / "empty.avi")
