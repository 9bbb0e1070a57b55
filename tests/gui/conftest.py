"""GUI test setup: the PySide6 refcount fix is applied before any widget exists, no worker thread may
outlive its test, and the page tests get real "camera" videos, a real gallery and a window factory."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import pytest

import faceapp.gui  # noqa: F401 - applies faceapp.gui._pyside_fix before Qt is used
from faceapp.capture.images import read_image
from faceapp.capture.synthetic import face_video_frames, write_video
from faceapp.gui.workers import active_workers, shutdown_workers


@pytest.fixture(autouse=True)
def _fresh_gui_settings() -> None:
    """Each test starts without the settings an earlier test remembered (page, theme, operator mode)."""
    from faceapp.gui.settings import settings_path

    settings_path().unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _no_leftover_workers(qapp):  # noqa: ANN001 - pytest-qt's QApplication
    """Fail a test that leaves a worker running; cancel and join whatever is left.

    Cyclic garbage collection is off during the test and done here on the GUI thread afterwards: a worker
    thread that triggers it would free Qt objects off the GUI thread and crash (see faceapp.gui.gc_thread).
    """
    gc.disable()
    yield
    still = [w for w in active_workers() if not w.wait(2.0)]
    ok = shutdown_workers(20.0)
    qapp.processEvents()
    gc.collect()
    gc.enable()
    assert ok, "a GUI worker did not stop within 20 s after the test"
    assert not still, f"{len(still)} worker(s) still running at the end of the test"


# --------------------------------------------------------------------------- real data for the page tests
THRESHOLD = 0.9   # identify/verify threshold stored in the test gallery (see docs/gui.md, "Tests")


@pytest.fixture(scope="session")
def gui_videos(tmp_path_factory: pytest.TempPathFactory, att: Path, cfp: Path) -> dict[str, Path]:
    """640x480 MJPG "camera" videos built from dataset photos.

    known: AT&T s1 photo 1 drifting (40 frames); stranger: a CFP person (40 frames);
    s5: AT&T s5 photos 1..8, 8 frames each (a person moving between poses, for enrolment).
    """
    root = tmp_path_factory.mktemp("gui-videos")
    known = read_image(att / "s1" / "1.pgm")
    stranger = read_image(cfp / "Data" / "Images" / "001" / "frontal" / "01.jpg")
    s5 = [frame for i in range(1, 9) for frame in face_video_frames(read_image(att / "s5" / f"{i}.pgm"), 8, motion_px=2)]
    return {
        "known": write_video(face_video_frames(known, 40, motion_px=4), root / "known.avi", 25),
        "stranger": write_video(face_video_frames(stranger, 40, motion_px=4), root / "stranger.avi", 25),
        "s5": write_video(s5, root / "s5.avi", 25),
    }


@pytest.fixture(scope="session")
def gallery_db(tmp_path_factory: pytest.TempPathFactory, gui_videos: dict[str, Path], att: Path,
               mediapipe_models: Path) -> Path:
    """A SQLite gallery made with the real pipeline and the default embedder: "s1" from 5 frames of the
    known video, "s2" from 3 AT&T photos; thresholds 0.9 for the model."""
    from faceapp.capture.sources import VideoFileSource
    from faceapp.core.progress import run_to_completion
    from faceapp.embedding import Embedder
    from faceapp.services.enrollment import EnrollmentService
    from faceapp.services.gallery import Gallery, model_spec
    from faceapp.storage import NewIdentity, Store
    from faceapp.vision.pipeline import FacePipeline

    path = tmp_path_factory.mktemp("gui-db") / "gallery.db"
    embedder = Embedder.load(device="cpu")
    with Store(path) as store, FacePipeline("image", model_dir=mediapipe_models) as pipeline:
        service = EnrollmentService(store, embedder, pipeline=pipeline, operator="tester")
        with VideoFileSource(gui_videos["known"]) as source:
            frames = [f.image for f in source][::8]
        run_to_completion(service.enroll(NewIdentity("s1"), frames))
        run_to_completion(service.enroll(NewIdentity("s2"), [att / "s2" / f"{i}.pgm" for i in (1, 2, 3)]))
        Gallery(store, model_spec(embedder), embedder.card).save_thresholds(THRESHOLD, THRESHOLD, source="test")
    return path


@pytest.fixture
def db_copy(gallery_db: Path, tmp_path: Path) -> Path:
    """A private copy of the test gallery (tests may change it)."""
    target = tmp_path / "gallery.db"
    shutil.copy(gallery_db, target)
    return target


@pytest.fixture
def open_window(qtbot, mediapipe_models: Path):  # noqa: ANN001, ANN201
    """``open_window(*cli_args)`` -> a shown MainWindow whose services finished loading; closed afterwards."""
    from faceapp.gui.app import build_parser, create_window
    from faceapp.gui.settings import settings_path

    settings_path().unlink(missing_ok=True)      # each test starts without remembered GUI state
    windows = []

    def make(*args: str, wait: bool = True):  # noqa: ANN202
        argv = ["--mediapipe-dir", str(mediapipe_models), "--device", "cpu", *args]
        window = create_window(build_parser().parse_args(argv))
        qtbot.addWidget(window)
        window.resize(1280, 820)
        window.show()
        windows.append(window)
        if wait:
            qtbot.waitUntil(lambda: not window.ctx.loading, timeout=60000)
        return window

    yield make
    for window in windows:
        window.close()


@pytest.fixture
def drop_files():  # noqa: ANN201
    """``drop_files(widget, paths)`` delivers a drag-and-drop of local files to ``widget`` as Qt would."""

    def drop(widget, paths) -> None:  # noqa: ANN001
        from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
        from PySide6.QtGui import QDragEnterEvent, QDropEvent

        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
        where = QPointF(widget.rect().center())
        # Qt 6: QDragEnterEvent takes a QPoint, QDropEvent a QPointF
        enter = QDragEnterEvent(widget.rect().center(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
        widget.dragEnterEvent(enter)
        assert enter.isAccepted(), f"{type(widget).__name__} refused the drag"
        widget.dropEvent(QDropEvent(where, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                    Qt.KeyboardModifier.NoModifier))

    return drop
