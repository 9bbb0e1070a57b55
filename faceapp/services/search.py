"""Which search engine a gallery uses, and the one place that opens it: exact, FAISS or pgvector.

Modes (``--index`` on the command line, ``$FACEAPP_INDEX``, ``WorkstationOptions.index``):

- ``auto`` (default): pgvector when the store is PostgreSQL with the extension usable; else FAISS (HNSW or IVF
  by size) when the gallery holds at least ``AUTO_ANN_MIN_TEMPLATES`` templates of the model and faiss-cpu is
  installed; else the exact search.
- ``exact``: the exact in-memory search (numpy), always available.
- ``faiss`` / ``hnsw`` / ``ivf``: FAISS at any size (``faiss`` picks the structure by size).
- ``pgvector``: the identify query runs in PostgreSQL.

Whatever cannot be had (FAISS not installed, pgvector missing or not enabled, an index file from another
model or damaged) falls back to the exact search (or a rebuilt FAISS index) with a one-sentence ``notice``
the interfaces show; nothing in the database is touched by a fallback.

The FAISS index is persisted (``faceapp.matching.index_file``) beside a SQLite database or in the cache
folder, and reused only when its header and content digest match the gallery's rows.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.matching.index import GalleryIndex, as_probe, best_per_identity

log = logging.getLogger(__name__)

MODES = ("auto", "exact", "faiss", "hnsw", "ivf", "pgvector")
ENV_INDEX = "FACEAPP_INDEX"
AUTO_ANN_MIN_TEMPLATES = 200_000      # exact search stays under ~10 ms below this on a 2-core CPU


def resolve_mode(mode: str | None) -> str:
    """``mode``, else $FACEAPP_INDEX, else "auto"; ValueError naming the setting for an unknown one."""
    chosen = (mode or os.environ.get(ENV_INDEX, "") or "auto").strip().lower()
    if chosen not in MODES:
        source = "--index" if mode else f"${ENV_INDEX}"
        raise ValueError(f"{source}={chosen!r} is not a search mode; known: {', '.join(MODES)}")
    return chosen


class PgVectorIndex(GalleryIndex):
    """The exact rows (verify, fallback) with identification answered by pgvector in the database."""

    def __init__(self, model_id: str, dim: int, searcher: Any) -> None:
        super().__init__(model_id, dim)
        self.kind = "pgvector"
        self.searcher = searcher

    def top_identities(self, probe: np.ndarray, top_k: int = 5) -> list[tuple[int, float]]:
        if top_k <= 0 or len(self) == 0:
            return []
        vector = as_probe(probe, self.dim)
        _, identity_ids, scores = self.searcher.nearest(vector, max(64, 2 * top_k * self.most_templates))
        return best_per_identity(identity_ids, scores, top_k)


@dataclass
class SearchChoice:
    """What a gallery searches with, and why (``notice``: a fallback the operator should know of)."""

    mode: str
    engine: str = "exact"                 # exact / hnsw / ivf / pgvector
    notice: str | None = None
    index_file: Path | None = None
    loaded_from_file: bool = False
    cipher: Any = None                    # the gallery's cipher: the FAISS file is sealed with it (never clear)
    background: bool = False              # build FAISS on a thread (exact / the old snapshot answer meanwhile)


def index_file_for(store: Any, model_id: str) -> Path | None:
    """Where the FAISS index of ``model_id`` is kept for ``store`` (None for an in-memory SQLite database)."""
    from faceapp.core.paths import cache_dir
    from faceapp.matching.index_file import index_path

    if store.is_sqlite and store.path is None:
        return None
    return index_path(store.path, store.url.render_as_string(hide_password=True), model_id, cache_dir())


def open_search(store: Any, exact: GalleryIndex, mode: str, *,
                background: bool = False) -> tuple[GalleryIndex, SearchChoice]:
    """The index a gallery of ``exact``'s rows (freshly loaded from ``store``) searches with under ``mode``;
    ``background``: a FAISS index that must be (re)built is built on a thread (see ``rebuild``)."""
    choice = SearchChoice(mode=mode, background=background)
    if mode == "exact":
        return exact, choice
    if mode in ("auto", "pgvector") and not store.is_sqlite:
        index = _pgvector(store, exact, choice)
        if index is not None:
            return index, choice
    if mode == "pgvector":
        if choice.notice is None:
            choice.notice = "pgvector search needs a PostgreSQL gallery; searching exactly in memory"
        return exact, choice
    if mode == "auto" and len(exact) < AUTO_ANN_MIN_TEMPLATES:
        return exact, choice
    return _faiss(store, exact, choice, None if mode in ("auto", "faiss") else mode)


def _pgvector(store: Any, exact: GalleryIndex, choice: SearchChoice) -> GalleryIndex | None:
    from faceapp.storage.vectors import VectorSearch, pgvector_capability

    reason = pgvector_capability(store)
    if reason is None and store.encrypted:
        reason = ("the gallery is encrypted at rest, and pgvector would hold its templates in clear on the server "
                  "(keep the gallery encrypted and search in memory, or `faceapp db` it without encryption)")
        forget_server_vectors(store)
    if reason is not None:
        if choice.mode == "pgvector":
            choice.notice = f"server-side search unavailable: {reason}; searching exactly in memory"
        log.info("pgvector not used: %s", reason)
        return None
    searcher = VectorSearch(store, exact.model_id, exact.dim)
    searcher.ensure()
    index = PgVectorIndex(exact.model_id, exact.dim, searcher)
    index.take_rows(exact)
    searcher.push(index.template_ids, index.matrix)
    choice.engine = "pgvector"
    return index


def forget_server_vectors(store: Any) -> None:
    """Delete clear vectors an earlier, unencrypted use of pgvector left on the server (none: nothing to do)."""
    from sqlalchemy import inspect, text

    from faceapp.storage.vectors import TABLE

    if store.is_sqlite or not inspect(store.engine).has_table(TABLE):
        return
    with store.engine.begin() as connection:
        connection.execute(text(f"DELETE FROM {TABLE}"))


def _index_cipher(store: Any) -> Any:
    """The gallery's cipher when it is encrypted (the FAISS file then holds sealed data), else None."""
    return store.vault.cipher if getattr(store, "vault", None) is not None else None


def _faiss(store: Any, exact: GalleryIndex, choice: SearchChoice,
           kind: str | None) -> tuple[GalleryIndex, SearchChoice]:
    from faceapp.matching.ann import AnnUnavailableError, FaissIndex
    from faceapp.matching.index_file import IndexFileError, load_index

    try:
        index = FaissIndex.from_exact(exact, kind=kind)
    except AnnUnavailableError as error:
        choice.notice = f"{error}; searching exactly"
        return exact, choice
    path = choice.index_file = index_file_for(store, exact.model_id)
    choice.cipher = _index_cipher(store) if path is not None else None
    if path is not None and path.is_file():
        try:
            header = load_index(path, index, cipher=choice.cipher)
            if kind is None or header["kind"] == kind:
                choice.loaded_from_file = True
        except (IndexFileError, OSError) as error:
            choice.notice = f"{error}; rebuilt it from the database"
            log.warning("%s", choice.notice)
    choice.engine = index.kind or "exact"
    if not choice.loaded_from_file or index.stale:
        rebuild(index, choice)
    return index, choice


def rebuild(index: Any, choice: SearchChoice) -> None:
    """Build ``index``'s FAISS structure and save it: on a thread when ``choice.background`` (the exact search
    or the old snapshot answer until it is swapped in; a query never waits), else now."""
    def finished(built: Any) -> None:
        choice.engine = built.kind or "exact"
        persist(built, choice)

    if choice.background:
        index.build_in_background(finished)
    else:
        index.build()
        finished(index)


def persist(index: Any, choice: SearchChoice) -> None:
    """Save a FAISS index to its file (a write failure is a notice: the index in memory still serves)."""
    from faceapp.matching.index_file import save_index

    if choice.index_file is None:
        return
    try:
        save_index(choice.index_file, index, cipher=choice.cipher)
    except OSError as error:
        choice.notice = f"could not save the search index to {choice.index_file} ({error}); it is rebuilt next start"
        log.warning("%s", choice.notice)


def after_changes(index: GalleryIndex, choice: SearchChoice, added_ids: np.ndarray, added: np.ndarray) -> None:
    """Keep the engine current after rows were added or removed: push the added rows' vectors to pgvector,
    rebuild a FAISS index past its change budget (and save it; on a thread when ``choice.background``)."""
    if choice.engine == "pgvector":
        if len(added_ids):
            index.searcher.push(added_ids, added, known_new=True)   # type: ignore[attr-defined]
    elif getattr(index, "stale", False) and getattr(index, "built", False) and not getattr(index, "building", False):
        rebuild(index, choice)
