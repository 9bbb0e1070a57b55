"""Frame sources: image files, folders, video files (stand-in camera) and an absent webcam."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceapp.capture.images import read_image
from faceapp.capture.sources import CameraSource, ImageFilesSource, VideoFileSource, open_source
from faceapp.capture.synthetic import face_video_frames, write_video
from faceapp.core.errors import CameraError, ExitCode, InputFileError


@pytest.fixture(scope="module")
def video(celeba: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    face = read_image(sorted(celeba.glob("*/*.jpg"))[0])
    path = tmp_path_factory.mktemp("video") / "face.avi"
    return write_video(face_video_frames(face, n_frames=12), path, fps=20.0, fourcc="FFV1")


def test_folder_source_yields_every_image_in_order(att: Path) -> None:
    with open_source(att / "s3") as source:
        assert isinstance(source, ImageFilesSource)
        frames = list(source)
    assert len(frames) == 10
    assert [f.index for f in frames] == list(range(10))
    assert all(f.image.shape == (112, 92, 3) and f.image.dtype == np.uint8 for f in frames)
    assert all(f.timestamp_ms == 0.0 for f in frames)
    assert {Path(f.source).parent for f in frames} == {att / "s3"}


def test_list_of_files_and_single_file(att: Path) -> None:
    files = [att / "s1" / "1.pgm", att / "s2" / "1.pgm"]
    assert [f.source for f in open_source(files)] == [str(p) for p in files]
    assert len(list(open_source(str(files[0])))) == 1


def test_image_source_skips_or_raises_on_bad_files(att: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_text("not an image")
    good = att / "s1" / "1.pgm"
    with pytest.raises(InputFileError, match="broken.jpg"):
        list(ImageFilesSource([good, bad]))
    source = ImageFilesSource([bad, good], skip_unreadable=True)
    frames = list(source)
    assert [f.source for f in frames] == [str(good)]
    assert source.errors and source.errors[0][0] == str(bad)


def test_video_file_source_frames_and_timestamps(video: Path) -> None:
    with open_source(video) as source:
        assert isinstance(source, VideoFileSource)
        assert source.fps == pytest.approx(20.0)
        assert source.frame_size == (640, 480)
        frames = list(source)
    assert len(frames) == 12
    assert [f.timestamp_ms for f in frames] == pytest.approx([i * 50.0 for i in range(12)])
    assert frames[0].image.shape == (480, 640, 3)
    assert all(f.source == str(video) for f in frames)


def test_video_is_lossless_with_ffv1(video: Path, celeba: Path) -> None:
    face = read_image(sorted(celeba.glob("*/*.jpg"))[0])
    written = list(face_video_frames(face, n_frames=12))
    with VideoFileSource(video) as source:
        read_back = [f.image for f in source]
    assert all(np.array_equal(a, b) for a, b in zip(written, read_back))


def test_looping_video_is_an_endless_camera_with_growing_timestamps(video: Path) -> None:
    with open_source(video, loop=True) as source:
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 30:
                break
    stamps = [f.timestamp_ms for f in frames]
    assert len(frames) == 30 and all(b > a for a, b in zip(stamps, stamps[1:]))
    assert np.array_equal(frames[0].image, frames[12].image)      # it wrapped around


def test_realtime_pacing_still_yields_all_frames(video: Path) -> None:
    with VideoFileSource(video, realtime=True) as source:
        assert len(list(source)) == 12


def test_missing_and_bad_videos(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such"):
        open_source(tmp_path / "missing.avi")
    fake = tmp_path / "fake.avi"
    fake.write_text("not a video")
    with pytest.raises(InputFileError, match="fake.avi"):
        open_source(fake)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="0 bytes"):
        open_source(empty)


def test_absent_camera_raises_camera_error() -> None:
    # this machine has no /dev/video*: an index far beyond any real device
    with pytest.raises(CameraError) as info:
        open_source("camera:9")
    assert "camera 9" in str(info.value)
    assert info.value.exit_code == ExitCode.CAMERA
    with pytest.raises(CameraError):
        CameraSource(9)
