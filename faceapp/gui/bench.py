"""Benchmark of the live view: the headless ``LiveRunner`` and the GUI's Live page on the same video.

Both read the 640 x 480 one-face video of ``faceapp bench`` looped at its own frame rate (30 fps), like
a camera: frames are dropped when processing is behind (the ``-max`` variants read it as fast as it
decodes, to show the most either can do). Both identify against a small real gallery (the video's own
face enrolled in a throw-away SQLite file). One timed call is one result:

- ``live-headless``: the next ``LiveResult`` from ``LiveRunner.results`` (capture thread + detect,
  align, embed, match).
- ``live-gui``: the next frame painted by the Live page of an offscreen main window (the same runner
  on ``LiveThread``, plus the hand-over to the GUI thread, overlays, the answer panel and painting).

The per-frame time of each is the inverse of its end-to-end FPS; the notes give the median time of
every stage (capture, detect, embed, match, and for the GUI the display step) over the timed frames.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import replace
import time
from pathlib import Path
from typing import Any

from faceapp.core.progress import CancelToken, run_to_completion


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def stage_note(times: list[Any], extra: dict[str, list[float]] | None = None) -> str:
    """"median ms: capture a | detect b | ..." over a list of StageTimes."""
    parts = {name: _median([getattr(t, f"{name}_ms") for t in times]) for name in ("capture", "detect", "embed", "match")}
    liveness = [getattr(t, "liveness_ms", 0.0) for t in times]
    if any(liveness):        # passive scoring runs on some frames only: its mean says what it costs per frame
        parts["liveness"] = _median(liveness)
        parts["liveness mean"] = sum(liveness) / len(liveness)
    for name, values in (extra or {}).items():
        parts[name] = _median(values)
    return "median ms " + " | ".join(f"{k} {v:.1f}" for k, v in parts.items())


class LiveBenchSetup:
    """The shared resources: a gallery file with the video's face enrolled, the embedder, the video."""

    def __init__(self, video: Path, work_dir: Path, model_dir: Path | None, mediapipe_dir: Path | None) -> None:
        from faceapp.app import NewIdentity, WorkstationOptions, open_workstation
        from faceapp.capture.sources import VideoFileSource
        from faceapp.services.enrollment import EnrollmentService

        self.video = video
        self.mediapipe_dir = mediapipe_dir
        self.model_dir = model_dir
        self.db = work_dir / "live-bench.db"
        self.options = WorkstationOptions(db=str(self.db), model=model_dir, mediapipe_dir=mediapipe_dir,
                                          operator="bench", allow_download=True)
        self.workstation = open_workstation(self.options)
        self.embedder = self.workstation.embedder
        self.store = self.workstation.store
        with VideoFileSource(video) as source:
            frames = [f.image for f in source][::30][:3]
        with self.workstation.create_pipeline("image") as pipeline:
            service = EnrollmentService(self.store, self.embedder, pipeline=pipeline, operator="bench")
            run_to_completion(service.enroll(NewIdentity("bench person"), frames))
        self.gallery = self.workstation.gallery

    def close(self) -> None:
        self.workstation.close()


class HeadlessLive:
    """``LiveRunner`` over the looped video, consumed on its own thread as the GUI's ``LiveThread`` does;
    ``next()`` returns the next result.

    The consumer runs on a secondary thread because that is how a live view runs, and because torch's
    OpenMP inference called from the main thread of a busy 2-core machine was measured 10-20x slower
    than the same call from a secondary thread (see docs/gui.md, "Measured").
    """

    def __init__(self, setup: LiveBenchSetup, *, realtime: bool = True, liveness: str = "off") -> None:
        """``liveness``: the Live page's policy (off / passive / challenge / both) run on every frame."""
        import queue
        import threading

        from faceapp.capture.sources import VideoFileSource
        from faceapp.liveness.check import LivenessChecker
        from faceapp.services.live import GalleryMatcher, LivePipeline, LiveRunner, LiveSettings
        from faceapp.services.live_liveness import LiveLiveness
        self.pipeline = setup.workstation.create_pipeline("video")
        thresholds = setup.gallery.thresholds()
        settings = LiveSettings(mode="identify", identify_threshold=thresholds.identify, liveness_mode=liveness)
        judge = LiveLiveness(settings, LivenessChecker("off")) if liveness != "off" else None
        live = LivePipeline(self.pipeline, setup.embedder, GalleryMatcher(setup.gallery), settings, liveness=judge)
        self.runner = LiveRunner(VideoFileSource(setup.video, loop=True, realtime=realtime), live)
        self.cancel = CancelToken()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._consume, name="bench-live", daemon=True)
        self._thread.start()
        self.times: list[Any] = []

    def _consume(self) -> None:
        import queue

        try:
            for result in self.runner.results(self.cancel):
                try:                                  # latest result wins, as in LiveThread
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
                self._queue.put(result)
        except BaseException as error:  # noqa: BLE001 - handed to next()
            self._queue.put(error)

    def next(self) -> Any:
        result = self._queue.get(timeout=30.0)
        if isinstance(result, BaseException):
            raise result
        self.times.append(result.times)
        return result

    def close(self) -> None:
        self.cancel.cancel()
        self._thread.join(10.0)
        self.runner.close()
        self.pipeline.close()


class GuiLive:
    """The Live page of an offscreen main window playing the looped video; ``next()`` waits for a paint."""

    def __init__(self, setup: LiveBenchSetup, *, realtime: bool = True) -> None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        import faceapp.gui  # noqa: F401 - PySide6 refcount fix first
        from PySide6.QtWidgets import QApplication

        from faceapp.capture.sources import VideoFileSource
        from faceapp.gui.context import AppContext
        from faceapp.gui.main_window import MainWindow

        from faceapp.gui.gc_thread import collect_on_gui_thread

        self.app = QApplication.instance() or QApplication(["faceapp-bench"])
        collect_on_gui_thread(self.app)     # as the app does: cyclic GC only on the GUI thread
        self.ctx = AppContext(replace(setup.options, allow_download=False))    # the GUI never downloads
        self.ctx.load(blocking=True)
        self.window = MainWindow(self.ctx)
        self.window.resize(1280, 820)
        self.window.show()
        self.page = self.window.show_page("live")
        self.page.set_mode("identify")
        video = setup.video
        self.page.open_source = lambda spec, **_: VideoFileSource(video, loop=True, realtime=realtime)
        self.page.start_source(str(video))
        self._painted = self.page.view.frames_shown
        self.times: list[Any] = []
        self.display_ms: list[float] = []
        from PySide6.QtCore import QTimer

        self._tick = QTimer()           # wakes the blocking event wait now and then
        self._tick.start(100)

    def next(self) -> None:
        from PySide6.QtCore import QEventLoop

        deadline = time.monotonic() + 30.0
        while self.page.view.frames_shown == self._painted:
            if time.monotonic() > deadline:
                raise RuntimeError("the Live page showed no frame for 30 s")
            self.app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
        self.app.processEvents()        # paint the frame just set
        self._painted = self.page.view.frames_shown
        if self.page.result is not None:
            self.times.append(self.page.result.times)
            self.display_ms.append(self.page.display_ms + self.page.view.last_paint_ms)

    def close(self) -> None:
        self._tick.stop()
        self.window.close()
        self.app.processEvents()


# ------------------------------------------------------------------------------------------------ start-up
STARTUP_MARKS = ("python_started", "qt_imported", "window_built", "window_painted", "services_loaded",
                 "first_live_frame")


def _startup_child(t0: float, video: Path, db: Path, mediapipe_dir: Path | None, timeout_s: float) -> dict[str, Any]:
    """One cold start of the GUI as ``python main.py --source VIDEO --page live`` would do it, in this process
    (started by ``measure_startup``): seconds from ``t0`` (the parent's clock just before it spawned this
    process) to each of ``STARTUP_MARKS``."""
    marks: dict[str, float] = {"python_started": time.time()}
    import faceapp.gui  # noqa: F401 - PySide6 refcount fix first
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    from faceapp.gui.app import build_parser, create_window

    marks["qt_imported"] = time.time()
    argv = ["--db", str(db), "--source", str(video), "--page", "live", "--device", "cpu"]
    if mediapipe_dir is not None:
        argv += ["--mediapipe-dir", str(mediapipe_dir)]
    window = create_window(build_parser().parse_args(argv))
    marks["window_built"] = time.time()
    app = QApplication.instance()
    assert app is not None

    class FirstPaint(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
            if event.type() == QEvent.Type.Paint and "window_painted" not in marks:
                marks["window_painted"] = time.time()
            return False

    watcher = FirstPaint()
    window.installEventFilter(watcher)
    page = window.page("live")
    built_at_first_frame: list[str] = []

    def poll() -> None:
        if "services_loaded" not in marks and not window.ctx.loading and window.ctx.embedder is not None:
            marks["services_loaded"] = time.time()
        if page.view.frames_shown > 0 and "first_live_frame" not in marks:
            marks["first_live_frame"] = time.time()
            built_at_first_frame.extend(k for k in window.page_keys() if window.is_built(k))
        if "first_live_frame" in marks and "window_painted" in marks:
            app.quit()
        elif time.time() - t0 > timeout_s:
            app.quit()

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(2)
    window.show()
    app.exec()
    timer.stop()
    window.close()
    return {"seconds": {k: round(v - t0, 3) for k, v in marks.items()}, "pages_built": built_at_first_frame,
            "errors": dict(window.ctx.errors)}


def measure_startup(video: Path, *, rounds: int = 3, mediapipe_dir: Path | None = None,
                    timeout_s: float = 120.0) -> dict[str, Any]:
    """Cold-start the GUI ``rounds`` times in fresh processes (empty data folder and gallery, so no remembered
    state) with ``video`` as the camera; per mark the median seconds from process launch."""
    import json
    import subprocess
    import sys
    import tempfile

    runs = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, FACEAPP_DATA_DIR=tmp)
            if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
                env.setdefault("QT_QPA_PLATFORM", "offscreen")
            cmd = [sys.executable, "-m", "faceapp.gui.bench", "--startup-child", str(video), "--db",
                   str(Path(tmp) / "startup.db"), "--timeout", str(timeout_s)]
            if mediapipe_dir is not None:
                cmd += ["--mediapipe-dir", str(mediapipe_dir)]
            t0 = time.time()
            out = subprocess.run(cmd + ["--t0", repr(t0)], env=env, capture_output=True, text=True,
                                 timeout=timeout_s + 60)
            lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
            if out.returncode != 0 or not lines:
                raise RuntimeError(f"the start-up run failed ({out.returncode}): {out.stderr[-2000:]}")
            runs.append(json.loads(lines[-1]))
    medians = {mark: round(_median([r["seconds"][mark] for r in runs if mark in r["seconds"]]), 3)
               for mark in STARTUP_MARKS if any(mark in r["seconds"] for r in runs)}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"video": str(video), "rounds": rounds, "median_s": medians, "runs": runs,
            "load_average_1m": load, "cpu_count": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    """``python -m faceapp.gui.bench --startup [--video V]``: window-first-painted and first-live-frame."""
    import argparse
    import json

    from faceapp.core.paths import datasets_dir

    parser = argparse.ArgumentParser(prog="python -m faceapp.gui.bench",
                                     description="Start-up of the workstation: seconds from launching the process "
                                                 "to the window's first paint and to the first live frame shown "
                                                 "(a video file as the camera).")
    parser.add_argument("--startup", action="store_true", help="measure start-up (the only measurement here)")
    parser.add_argument("--video", type=Path, help="video used as the camera (default: the first "
                                                   "$FACEAPP_DATASETS/blink_videos/*.avi)")
    parser.add_argument("--rounds", type=int, default=3, help="cold starts to run (median reported; default 3)")
    parser.add_argument("--mediapipe-dir", type=Path, help="folder with face_landmarker.task (default $FACEAPP_MODEL_DIR)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--startup-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=120.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.startup_child is not None:
        print(json.dumps(_startup_child(args.t0, args.startup_child, args.db, args.mediapipe_dir, args.timeout)))
        return 0
    if not args.startup:
        parser.error("say what to measure: --startup")
    video = args.video or next(iter(sorted((datasets_dir() / "blink_videos").glob("*.avi"))), None)
    if video is None:
        parser.error("no video: pass --video FILE (or set FACEAPP_DATASETS)")
    report = measure_startup(video, rounds=args.rounds, mediapipe_dir=args.mediapipe_dir)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"start-up, {report['rounds']} cold starts (median seconds from launching the process), "
          f"{report['cpu_count']} CPUs, load average {report['load_average_1m']:.2f}, camera = {video.name}")
    for mark, value in report["median_s"].items():
        print(f"  {mark:<18} {value:6.2f} s")
    print("  pages built at the first live frame: " + ", ".join(report["runs"][-1]["pages_built"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
