"""The GUI's Qt adapter around a ``faceapp.app.Workstation``: app-wide signals, the load on a worker thread,
banners, and background runs.

The session itself (store, active model and embedder, gallery index, pipeline factory, threshold policy)
is the Qt-free ``Workstation``, built by ``faceapp.app.open_workstation`` from the same options as the
command line. Loading happens on a worker thread so the window appears at once; each part that fails
(database locked or damaged, embedding model missing, MediaPipe models missing) is reported in the window
and leaves the rest usable. Pages read ``ctx.store`` / ``ctx.embedder`` / ``ctx.gallery`` (None while
unavailable) and listen to ``services_changed`` and ``gallery_changed``.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from faceapp.app.workstation import Workstation, WorkstationOptions, open_workstation
from faceapp.gui.errors import describe_error
from faceapp.gui.workers import Worker, create_worker

log = logging.getLogger(__name__)

AppOptions = WorkstationOptions     # the GUI's options are the workstation's (theme and source are GUI-only)


def load_workstation(options: WorkstationOptions) -> Workstation:
    """A Workstation with every part opened now, failures recorded in ``errors`` (runs on a worker)."""
    return open_workstation(options, load=True)


class AppContext(QObject):
    """Shared state of one workstation window (lives on the GUI thread)."""

    message = Signal(str, str, bool)    # level, text, persistent -> banner
    retracted = Signal(str)             # text of a banner whose problem went away
    status = Signal(str, str, str)      # key, text, role -> status bar
    services_changed = Signal()         # store / embedder (re)loaded
    gallery_changed = Signal()          # identities or templates added, renamed or removed
    thresholds_changed = Signal()       # thresholds saved for the active model
    loading_changed = Signal(bool)
    passphrase_needed = Signal(str)     # the gallery is protected by a passphrase that was missing or wrong

    def __init__(self, options: WorkstationOptions | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        options = options or WorkstationOptions()
        if options.index_build is None:
            options.index_build = "background"      # the operator's session never waits for a FAISS build
        self.workstation = Workstation(options)   # unopened until load()
        self.loading = False
        self._load_worker: Worker | None = None
        self._loaded = threading.Event()
        self.pipeline_lock = threading.Lock()

    # -- the workstation's parts (None while unavailable) --------------------------------------
    @property
    def options(self) -> WorkstationOptions:
        return self.workstation.options

    @property
    def store(self) -> Any:
        return self.workstation._store if self.workstation.has("store") else None

    @property
    def embedder(self) -> Any:
        return self.workstation._embedder if self.workstation.has("embedder") else None

    @property
    def gallery(self) -> Any:
        return self.workstation._gallery if self.workstation.has("gallery") else None

    @property
    def landmarker(self) -> Path | None:
        return self.workstation.landmarker

    @property
    def errors(self) -> dict[str, str]:
        return self.workstation.errors

    def activate(self, embedder: Any, gallery: Any = None) -> None:
        """Make ``embedder`` (and its gallery index) the active model; pages hear ``services_changed``."""
        self.workstation.activate(embedder, gallery)

    # -- loading --------------------------------------------------------------------------------
    def load(self, *, blocking: bool = False) -> None:
        """(Re)load store, embedder and MediaPipe assets into a new Workstation; on a worker unless ``blocking``."""
        if self.loading:
            return
        self.loading = True
        self._loaded.clear()
        self.loading_changed.emit(True)
        self.status.emit("model", "Model: loading...", "")
        options = self.workstation.options
        if blocking:
            self._apply(load_workstation(options))
            return
        worker = create_worker(load_workstation, options)
        worker.returned.connect(self._apply)
        worker.errored.connect(self._load_failed)
        self._load_worker = worker
        worker.start()

    def _load_failed(self, error: BaseException) -> None:
        self.loading = False
        self._loaded.set()
        self.loading_changed.emit(False)
        self.report_error(error, "Loading the services")

    def _apply(self, loaded: Workstation) -> None:
        old = self.workstation
        self.workstation = loaded
        if old is not loaded:
            old.close()                      # a reload: the old session's store (closing one never opened is a no-op)
        self.loading = False
        self._loaded.set()
        self.loading_changed.emit(False)
        for key in ("database", "model", "gallery"):
            if key == "gallery" and key in self.errors and self.workstation.key_source == "passphrase":
                self.passphrase_needed.emit(self.errors[key])
            elif key in self.errors:
                self.message.emit("error", self.errors[key], True)
        for key in ("mediapipe", "search"):
            if key in self.errors:
                self.message.emit("warning", self.errors[key], True)
        if self.embedder is not None and not getattr(self.embedder, "trained", True):
            self.message.emit("warning", "The embedding model is UNTRAINED (random weights): identification and "
                                         "verification results are not meaningful until a trained model is activated "
                                         "(--model FOLDER or FACEAPP_EMBED_MODEL).", True)
        self.services_changed.emit()

    def use_passphrase(self, passphrase: str) -> None:
        """Open the gallery again with ``passphrase`` (the GUI's answer to ``passphrase_needed``)."""
        self.workstation.use_passphrase(passphrase)
        self.load()

    def wait_loaded(self, timeout_s: float = 60.0) -> bool:
        """Block until the current load ended (tests, benchmarks); the GUI uses ``services_changed``."""
        return self._loaded.wait(timeout_s)

    @property
    def model_id(self) -> str | None:
        return getattr(self.embedder, "model_id", None)

    # -- pipelines ------------------------------------------------------------------------------
    def create_pipeline(self, mode: str = "video") -> Any:
        """A new FacePipeline from the workstation's factory (call on a worker thread: it loads MediaPipe models)."""
        return self.workstation.create_pipeline(mode)

    # -- background work ------------------------------------------------------------------------
    def run(self, func: Callable[..., Any], *args: Any, on_result: Callable[[Any], None] | None = None,
            on_progress: Callable[[Any], None] | None = None, on_finished: Callable[[], None] | None = None,
            on_error: Callable[[BaseException], None] | None = None, context: str = "", **kwargs: Any) -> Worker:
        """Run ``func`` on a worker (SQL, file I/O, inference); failures go to the banner with ``context``
        (and to ``on_error`` too when given, for a page that shows an error state).

        Pass bound methods as callbacks (not lambdas capturing the worker); returns the started worker.
        """
        worker = create_worker(func, *args, **kwargs)
        if on_result is not None:
            worker.returned.connect(on_result)
        if on_progress is not None:
            worker.progress.connect(on_progress)
        if on_finished is not None:
            worker.finished.connect(on_finished)
        worker.errored.connect(partial(self.report_error, context=context))
        if on_error is not None:
            worker.errored.connect(on_error)
        return worker.start()

    # -- messages -------------------------------------------------------------------------------
    def notify(self, text: str, level: str = "info", *, persistent: bool = False) -> None:
        """Show ``text`` in the window's banner area (info and warnings fade unless ``persistent``)."""
        self.message.emit(level, text, persistent)

    def report_error(self, error: BaseException, context: str = "") -> None:
        """Show a failure in the window (never raises; the app keeps working)."""
        title, text = describe_error(error, context)
        log.info("%s: %s", title, text)
        self.message.emit("error", text, True)

    def retract(self, text: str) -> None:
        """Take back a message that no longer holds (its banner is dismissed)."""
        self.retracted.emit(text)

    def describe(self) -> dict[str, str]:
        """Status-bar texts (model, device, database) and their roles (warn/bad/good)."""
        return self.workstation.describe(loading=self.loading)

    # -- shutdown -------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Close the store (after pages stopped their threads)."""
        if self._load_worker is not None:
            self._load_worker.wait(30.0)
        self.workstation.close()
