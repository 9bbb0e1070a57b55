"""The GUI session: options, the loaded services (store, embedder, MediaPipe assets) and app-wide signals.

Loading happens on a worker thread so the window appears at once; each part that fails (database
locked or damaged, embedding model missing, MediaPipe models missing) is reported in the window and
leaves the rest usable. Pages read ``ctx.store`` / ``ctx.embedder`` (None while unavailable) and listen
to ``services_changed`` and ``gallery_changed``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from functools import partial
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from faceapp.gui.errors import describe_error
from faceapp.gui.workers import Worker, create_worker

log = logging.getLogger(__name__)


@dataclass
class AppOptions:
    """What the command line (or the test) chose; None means the usual default."""

    db: str | None = None                 # SQLAlchemy URL or SQLite file path
    model: Path | None = None             # embedding model folder
    mediapipe_dir: Path | None = None     # folder holding face_landmarker.task ...
    source: str | None = None             # initial live source (camera index, video, image)
    theme: str = "dark"
    device: str = "auto"                  # torch device for the embedder
    db_timeout: float = 10.0              # seconds to wait for a locked database


@dataclass
class LoadedServices:
    """What one load produced; errors are user-facing sentences keyed by part."""

    store: Any = None
    embedder: Any = None
    gallery: Any = None
    landmarker: Path | None = None
    errors: dict[str, str] = field(default_factory=dict)


def load_services(options: AppOptions) -> LoadedServices:
    """Open the store, load the embedder, build the gallery index and find the MediaPipe landmarker.

    Never raises for user errors: each part that fails leaves its field None and a sentence in ``errors``.
    """
    result = LoadedServices()
    errors = result.errors
    try:
        from faceapp.storage import Store

        result.store = Store(options.db, busy_timeout_s=options.db_timeout)
    except Exception as error:  # noqa: BLE001 - reported in the window
        errors["database"] = describe_error(error, "Opening the database")[1]
    try:
        from faceapp.embedding.embedder import Embedder

        result.embedder = Embedder.load(options.model, device=options.device)
    except Exception as error:  # noqa: BLE001
        errors["model"] = describe_error(error, "Loading the embedding model")[1]
    try:
        from faceapp.vision.assets import LANDMARKER, resolve_asset

        result.landmarker = resolve_asset(LANDMARKER, options.mediapipe_dir, allow_download=False)
    except Exception as error:  # noqa: BLE001
        errors["mediapipe"] = describe_error(error, "Finding the MediaPipe face landmarker")[1] + (
            " Face detection falls back to a simpler detector (less accurate alignment).")
    if result.store is not None and result.embedder is not None:
        try:
            from faceapp.services.gallery import Gallery, model_spec

            result.gallery = Gallery(result.store, model_spec(result.embedder), result.embedder.card)
        except Exception as error:  # noqa: BLE001
            errors["gallery"] = describe_error(error, "Loading the gallery for the active model")[1]
    return result


class AppContext(QObject):
    """Shared state of one workstation window (lives on the GUI thread)."""

    message = Signal(str, str, bool)    # level, text, persistent -> banner
    status = Signal(str, str, str)      # key, text, role -> status bar
    services_changed = Signal()         # store / embedder (re)loaded
    gallery_changed = Signal()          # identities or templates added, renamed or removed
    thresholds_changed = Signal()       # thresholds saved for the active model
    loading_changed = Signal(bool)

    def __init__(self, options: AppOptions | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.options = options or AppOptions()
        self.store: Any = None
        self.embedder: Any = None
        self.gallery: Any = None
        self.landmarker: Path | None = None
        self.errors: dict[str, str] = {}
        self.loading = False
        self._load_worker: Worker | None = None
        self._loaded = threading.Event()
        self.pipeline_lock = threading.Lock()

    # -- loading --------------------------------------------------------------------------------
    def load(self, *, blocking: bool = False) -> None:
        """(Re)load store, embedder and MediaPipe assets; on a worker unless ``blocking``."""
        if self.loading:
            return
        self.loading = True
        self._loaded.clear()
        self.loading_changed.emit(True)
        self.status.emit("model", "Model: loading...", "")
        if blocking:
            self._apply(load_services(self.options))
            return
        worker = create_worker(load_services, self.options)
        worker.returned.connect(self._apply)
        worker.errored.connect(self._load_failed)
        self._load_worker = worker
        worker.start()

    def _load_failed(self, error: BaseException) -> None:
        self.loading = False
        self._loaded.set()
        self.loading_changed.emit(False)
        self.report_error(error, "Loading the services")

    def _apply(self, loaded: LoadedServices) -> None:
        old_store = self.store
        self.store, self.embedder, self.landmarker = loaded.store, loaded.embedder, loaded.landmarker
        self.gallery = loaded.gallery
        self.errors = dict(loaded.errors)
        if old_store is not None and old_store is not self.store:
            _close_quietly(old_store)
        self.loading = False
        self._loaded.set()
        self.loading_changed.emit(False)
        for key in ("database", "model", "gallery"):
            if key in self.errors:
                self.message.emit("error", self.errors[key], True)
        if "mediapipe" in self.errors:
            self.message.emit("warning", self.errors["mediapipe"], True)
        if self.embedder is not None and not getattr(self.embedder, "trained", True):
            self.message.emit("warning", "The embedding model is UNTRAINED (random weights): identification and "
                                         "verification results are not meaningful until a trained model is activated "
                                         "(--model FOLDER or FACEAPP_EMBED_MODEL).", True)
        self.services_changed.emit()

    def wait_loaded(self, timeout_s: float = 60.0) -> bool:
        """Block until the current load ended (tests, benchmarks); the GUI uses ``services_changed``."""
        return self._loaded.wait(timeout_s)

    @property
    def model_id(self) -> str | None:
        return getattr(self.embedder, "model_id", None)

    # -- pipelines ------------------------------------------------------------------------------
    def create_pipeline(self, mode: str = "video") -> Any:
        """A new FacePipeline (call on a worker thread: it loads MediaPipe models)."""
        from faceapp.vision.pipeline import FacePipeline

        model_dir = self.options.mediapipe_dir
        if model_dir is None and self.landmarker is not None:
            model_dir = self.landmarker.parent
        return FacePipeline(mode, model_dir=model_dir, allow_download=False)

    # -- background work ------------------------------------------------------------------------
    def run(self, func: Callable[..., Any], *args: Any, on_result: Callable[[Any], None] | None = None,
            on_progress: Callable[[Any], None] | None = None, on_finished: Callable[[], None] | None = None,
            context: str = "", **kwargs: Any) -> Worker:
        """Run ``func`` on a worker (SQL, file I/O, inference); failures go to the banner with ``context``.

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

    def describe(self) -> dict[str, str]:
        """Status-bar texts (model, device, database) and their roles (warn/bad/good)."""
        info = {"model": "Model: none", "model_role": "status-bad", "device": "Device: -",
                "database": "DB: none", "database_role": "status-bad"}
        if self.loading:
            info.update(model="Model: loading...", model_role="")
        embedder = self.embedder
        if embedder is not None:
            trained = bool(getattr(embedder, "trained", True))
            info["model"] = f"Model: {getattr(embedder, 'model_id', '?')}" + ("" if trained else " (UNTRAINED)")
            info["model_role"] = "" if trained else "status-warn"
            info["device"] = f"Device: {getattr(embedder, 'device', '?')}"
        store = self.store
        if store is not None:
            path = getattr(store, "path", None)
            info["database"] = f"DB: {path.name if path is not None else store.where}"
            info["database_role"] = ""
        return info

    # -- shutdown -------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Close the store (after pages stopped their threads)."""
        if self._load_worker is not None:
            self._load_worker.wait(30.0)
        if self.store is not None:
            _close_quietly(self.store)


def _close_quietly(obj: Any) -> None:
    close = getattr(obj, "close", None) or getattr(obj, "dispose", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # noqa: BLE001
        log.debug("close failed", exc_info=True)
