"""The workstation session: one Qt-free object owning the store, the active model and its Embedder, the
gallery index of that model, the pipeline factory and the threshold policy.

The GUI (``faceapp.gui.context.AppContext`` wraps one), the command line (``faceapp.cli.commands``) and
the benchmarks build it the same way, from ``WorkstationOptions`` and the usual environment variables
(read where they always were: ``$FACEAPP_DB`` by the Store, ``$FACEAPP_EMBED_MODEL`` by the Embedder,
``$FACEAPP_MODEL_DIR`` by the MediaPipe asset resolver, ``$FACEAPP_OPERATOR`` by the gallery)::

    ws = open_workstation(WorkstationOptions(db="gallery.db", model=Path("models/default")))
    ws.gallery.identify(ws.embedder.embed_one(crop))     # parts open on first use; errors raise
    ws.close()

Two ways to load: the parts open lazily on first access and raise on failure (the CLI: a failure is the
command's exit code), or ``load()`` opens every part now and keeps going past failures, recording one
user-facing sentence per failed part in ``errors`` (the GUI: whatever is missing is reported in the window
while the rest keeps working).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from faceapp.app.errors import describe_error
from faceapp.core.errors import GalleryKeyError

log = logging.getLogger(__name__)



@dataclass
class WorkstationOptions:
    """What the command line, the GUI or a test chose; None means the usual default (environment, then
    the user data folder, then what ships)."""

    db: str | None = None                 # SQLAlchemy URL or SQLite file path ($FACEAPP_DB)
    model: Path | None = None             # embedding model folder ($FACEAPP_EMBED_MODEL, models/default)
    mediapipe_dir: Path | None = None     # folder holding face_landmarker.task ($FACEAPP_MODEL_DIR)
    source: str | None = None             # initial live source (camera index, video, image) - GUI only
    theme: str = "dark"                   # GUI only
    device: str = "auto"                  # torch device for the embedder
    flip_tta: bool = False                # add the embedding of the mirrored crop
    db_timeout: float = 10.0              # seconds to wait for a locked database
    schema: str = "upgrade"               # Store schema mode: upgrade / require / ignore (db maintenance)
    operator: str | None = None           # recorded in audit events ($FACEAPP_OPERATOR, else login name)
    index: str | None = None              # gallery search: auto/exact/faiss/hnsw/ivf/pgvector ($FACEAPP_INDEX, auto)
    index_build: str | None = None        # a FAISS index to (re)build: "wait" (None here: one-shot commands) or
                                          # "background" (the GUI's default: exact answers until it is ready)
    detector: str = "auto"                # pipeline factory: auto / landmarker / blazeface / haar
    min_confidence: float = 0.3
    max_side: int = 1280
    allow_download: bool = False          # may the pipeline factory download missing MediaPipe models
    download_progress: Callable[[int, int | None], None] | None = field(default=None, repr=False)
    keys: Any = field(default=None, repr=False)   # faceapp.storage.keys.KeyOptions (None: from the environment)


class Workstation:
    """One session of the workstation (see the module docstring). Thread-safe to read; ``activate`` and
    ``close`` are called by its owner."""

    def __init__(self, options: WorkstationOptions | None = None) -> None:
        self.options = options or WorkstationOptions()
        self.errors: dict[str, str] = {}
        self.landmarker: Path | None = None
        self.key_source: str | None = None       # where the gallery key was looked for, when it could not be had
        self._store: Any = None
        self._embedder: Any = None
        self._gallery: Any = None
        self._lock = threading.RLock()

    def use_passphrase(self, passphrase: str) -> None:
        """Open the gallery with ``passphrase`` from now on (the operator typed it); the next ``load`` uses it."""
        from dataclasses import replace

        from faceapp.storage.keys import KeyOptions

        keys = self.options.keys if self.options.keys is not None else KeyOptions.from_environment()
        self.options.keys = replace(keys, passphrase=passphrase)

    # -- the parts (lazy, strict) -----------------------------------------------------------------
    @property
    def store(self) -> Any:
        """The gallery database (``faceapp.storage.Store``), opened (and upgraded) on first use."""
        with self._lock:
            if self._store is None:
                from faceapp.storage import Store

                self._store = Store(self.options.db, schema=self.options.schema,
                                    busy_timeout_s=self.options.db_timeout, keys=self.options.keys)
            return self._store

    @property
    def embedder(self) -> Any:
        """The active model's ``Embedder``, loaded on first use."""
        with self._lock:
            if self._embedder is None:
                from faceapp.embedding import Embedder

                self._embedder = Embedder.load(self.options.model, device=self.options.device,
                                               flip_tta=self.options.flip_tta)
            return self._embedder

    @property
    def gallery(self) -> Any:
        """The gallery index of the active model over the store (``faceapp.services.gallery.Gallery``)."""
        with self._lock:
            if self._gallery is None:
                self._gallery = gallery_for(self.store, self.embedder, self.options)
            return self._gallery

    def has(self, part: str) -> bool:
        """Whether ``part`` ("store", "embedder", "gallery") is open now (never opens it)."""
        return getattr(self, f"_{part}") is not None

    @property
    def model_id(self) -> str | None:
        return getattr(self._embedder, "model_id", None)

    # -- tolerant load (the GUI) ------------------------------------------------------------------
    def load(self) -> dict[str, str]:
        """Open the store, load the embedder, find the MediaPipe landmarker and build the gallery index now.

        Never raises for user errors: each part that fails stays None and gets a sentence in ``errors``
        (keys: database, model, mediapipe, gallery; "search" when the gallery searches with a fallback); returns
        ``errors``.
        """
        errors = self.errors
        errors.clear()
        try:
            self.store
        except Exception as error:  # noqa: BLE001 - reported to the operator
            errors["database"] = describe_error(error, "Opening the database")[1]
        try:
            self.embedder
        except Exception as error:  # noqa: BLE001
            errors["model"] = describe_error(error, "Loading the embedding model")[1]
        try:
            self.landmarker = self.find_landmarker()
        except Exception as error:  # noqa: BLE001
            errors["mediapipe"] = describe_error(error, "Finding the MediaPipe face landmarker")[1] + (
                " Face detection falls back to a simpler detector (less accurate alignment).")
        if self._store is not None and self._embedder is not None:
            try:
                notice = self.gallery.search.notice
                if notice:       # a search engine fell back (FAISS missing, index file rebuilt, no pgvector)
                    errors["search"] = f"Gallery search: {notice}. Identification works."
            except Exception as error:  # noqa: BLE001
                errors["gallery"] = describe_error(error, "Loading the gallery for the active model")[1]
                if isinstance(error, GalleryKeyError):
                    from faceapp.storage.crypto import key_source

                    self.key_source = key_source(self._store)    # "passphrase": the GUI asks for it
        return errors

    def find_landmarker(self) -> Path:
        """The MediaPipe landmarker file (--mediapipe-dir, $FACEAPP_MODEL_DIR, user data folder); never downloads."""
        from faceapp.vision.assets import LANDMARKER, resolve_asset

        return resolve_asset(LANDMARKER, self.options.mediapipe_dir, allow_download=False)

    # -- pipeline factory -------------------------------------------------------------------------
    def create_pipeline(self, mode: str = "image", **overrides: Any) -> Any:
        """A new ``FacePipeline`` from the options (loads MediaPipe models: call off the GUI thread)."""
        from faceapp.vision.pipeline import FacePipeline

        options = self.options
        model_dir = options.mediapipe_dir
        if model_dir is None and self.landmarker is not None:
            model_dir = self.landmarker.parent
        kwargs: dict[str, Any] = {"model_dir": model_dir, "min_confidence": options.min_confidence,
                                  "max_side": options.max_side, "detector": options.detector,
                                  "allow_download": options.allow_download}
        if options.download_progress is not None:
            kwargs["download_progress"] = options.download_progress
        kwargs.update(overrides)
        return FacePipeline(mode, **kwargs)

    # -- threshold policy -------------------------------------------------------------------------
    def thresholds(self) -> Any:
        """The active model's thresholds: stored for the gallery, else the model card, else defaults."""
        return self.gallery.thresholds()

    def save_thresholds(self, verify: float, identify: float, *, target_far: float | None = None,
                        source: str = "manual") -> Any:
        """Save thresholds for the active model (the one route, exact values, with source and date)."""
        return self.gallery.save_thresholds(verify, identify, target_far=target_far, source=source)

    # -- model activation -------------------------------------------------------------------------
    def activate(self, embedder: Any, gallery: Any = None) -> None:
        """Make ``embedder`` the active model (after ``services.activation.activate_model`` re-embedded
        the gallery); ``gallery`` is its index, built on first use when None."""
        with self._lock:
            self._embedder = embedder
            self._gallery = gallery
            folder = getattr(embedder, "folder", None)
            if folder is not None:
                self.options.model = Path(folder)

    # -- status and shutdown ----------------------------------------------------------------------
    def describe(self, *, loading: bool = False) -> dict[str, Any]:
        """Status texts (model, device with its engine, database with its search) and their roles
        (status-warn/status-bad/""); ``search_building`` when a FAISS index is being built."""
        info = {"model": "Model: none", "model_role": "status-bad", "device": "Device: -",
                "database": "DB: none", "database_role": "status-bad"}
        if loading:
            info.update(model="Model: loading...", model_role="")
        embedder = self._embedder
        if embedder is not None:
            trained = bool(getattr(embedder, "trained", True))
            info["model"] = f"Model: {getattr(embedder, 'model_id', '?')}" + ("" if trained else " (UNTRAINED)")
            info["model_role"] = "" if trained else "status-warn"
            engine = getattr(embedder, "engine", None)
            info["device"] = f"Device: {getattr(embedder, 'device', '?')}" + (f" ({engine})" if engine else "")
        store = self._store
        if store is not None:
            path = getattr(store, "path", None)
            info["database"] = f"DB: {path.name if path is not None else store.where}"
            info["database_role"] = ""
            search = self.search_state()
            if search is not None:
                info["database"] += f" · search {search}"
                info["search_building"] = "building" in search
        return info

    def search_state(self) -> str | None:
        """How the open gallery answers identification ("exact", "ivf", "exact, FAISS index building"...);
        None before a gallery is open. Reads attributes only: never waits for the gallery's lock."""
        gallery = self._gallery
        if gallery is None:
            return None
        choice = getattr(gallery, "search", None)
        engine = getattr(choice, "engine", "exact")
        if getattr(getattr(gallery, "index", None), "building", False):
            return f"{engine}, FAISS index building"
        return engine

    def close(self) -> None:
        """Close the store (the embedder and the index need no closing)."""
        with self._lock:
            store, self._store, self._gallery = self._store, None, None
        if store is not None:
            close_quietly(store)

    def __enter__(self) -> "Workstation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def gallery_for(store: Any, embedder: Any, options: WorkstationOptions) -> Any:
    """The gallery index of ``embedder`` over ``store`` with the session's operator: the one way a session's
    gallery is built (at start, and again when the Trainer activates another model)."""
    from faceapp.services.gallery import Gallery, model_spec

    return Gallery(store, model_spec(embedder), embedder.card, operator=options.operator, search=options.index,
                   index_build=options.index_build or "wait")


def open_workstation(options: WorkstationOptions | None = None, *, load: bool = False) -> Workstation:
    """THE way to build a workstation (GUI, CLI, bench): from options plus the environment. With ``load``
    every part is opened now and failures are recorded in ``errors`` instead of raised."""
    workstation = Workstation(options)
    if load:
        workstation.load()
    return workstation


def close_quietly(obj: Any) -> None:
    close = getattr(obj, "close", None) or getattr(obj, "dispose", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # noqa: BLE001
        log.debug("close failed", exc_info=True)
