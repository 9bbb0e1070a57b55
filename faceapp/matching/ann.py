"""Approximate gallery search on FAISS (``faiss-cpu``, the optional ``ann`` extra): HNSW or IVF.

``FaissIndex`` is a ``GalleryIndex`` (it keeps the exact rows: verification, re-ranking, the exact fallback)
plus a FAISS graph or inverted file over a snapshot of those rows, labelled by template id. A query asks
FAISS for the nearest ``candidates`` templates, re-scores them exactly against the stored rows, adds the
rows enrolled since the snapshot (searched exactly), drops rows deleted since (tombstones), and ranks
identities by their best template, as the exact index does. When the rows added or deleted since the
snapshot pass ``rebuild_fraction`` of it, ``stale`` turns true and the owner rebuilds.

Which structure: HNSW (graph; the better recall@5, build grows ~N log N; a copy of the rows + ~290 bytes of links
a row at M=32) up to ``HNSW_MAX_TEMPLATES``, IVF with 8-bit scalar-quantised codes (k-means cells; ten times
cheaper to build, a quarter of the rows' size, and a cell scan reads a quarter of the bytes: at 1 M templates
and the same cells probed, 1.7 ms instead of 3.1 ms a query with the same recall, since every candidate is
re-scored exactly) above it
(docs/scaling.md has the measurements). Both use the inner product of unit rows, i.e. the cosine.

Building: ``build`` blocks; ``build_in_background`` copies the rows and builds on a thread while the old
snapshot (or, before the first one, the exact search) keeps answering; the new structure is swapped in under
the index's own lock, with the rows deleted meanwhile as tombstones, so a query never waits for a build.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import Any, Callable, Iterable

import numpy as np

from faceapp.core.errors import FaceAppError, ExitCode
from faceapp.matching.index import GalleryIndex, as_probe, best_per_identity

log = logging.getLogger(__name__)

KINDS = ("hnsw", "ivf")
HNSW_MAX_TEMPLATES = 250_000       # above: IVF (HNSW at 1 M: 411 s to build on 2 quiet cores, recall@1 0.95; docs/scaling.md)
HNSW_M = 32                        # graph degree
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 64
IVF_PROBE_FRACTION = 1 / 10        # cells visited per query (at least IVF_MIN_PROBE)
IVF_MIN_PROBE = 16
INSTALL_HINT = "install the optional extra: pip install 'faceapp[ann]' (faiss-cpu)"


class AnnUnavailableError(FaceAppError):
    """FAISS is not installed (or cannot load); the exact index serves instead."""

    exit_code = ExitCode.INCOMPATIBLE


def load_faiss() -> Any:
    """The ``faiss`` module, or AnnUnavailableError saying how to install it.

    Searches run on one OpenMP thread: a single query gains nothing from more, and on a small CPU shared with
    the camera, detector and embedder threads an OpenMP team waits for descheduled threads (measured on the
    2-core workstation under load: HNSW at 100k templates, 20 ms a query with 2 threads, 3 ms with one) -
    the same reason the exact index avoids BLAS threads. ``build`` uses every core while it runs."""
    try:
        import faiss  # noqa: PLC0415 - optional dependency
    except ImportError as error:
        raise AnnUnavailableError(f"approximate search needs FAISS, which is not installed ({error}): "
                                  f"{INSTALL_HINT}") from error
    faiss.omp_set_num_threads(1)
    return faiss


def faiss_available() -> bool:
    try:
        load_faiss()
    except AnnUnavailableError:
        return False
    return True


def kind_for(templates: int) -> str:
    """The FAISS structure for a gallery of ``templates`` rows: HNSW up to HNSW_MAX_TEMPLATES, IVF above."""
    return "hnsw" if templates <= HNSW_MAX_TEMPLATES else "ivf"


def ivf_cells(templates: int) -> int:
    """IVF cells for ``templates`` rows: ~4 sqrt(N), within [16, 65536]."""
    return int(min(65536, max(16, 4 * math.sqrt(max(templates, 1)))))


class FaissIndex(GalleryIndex):
    """An exact ``GalleryIndex`` with a FAISS structure over a snapshot of its rows (see the module doc)."""

    def __init__(self, model_id: str, dim: int, *, kind: str | None = None, rebuild_fraction: float = 0.1,
                 use_blas: bool = False) -> None:
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown FAISS index kind {kind!r}; known: {', '.join(KINDS)}")
        super().__init__(model_id, dim, use_blas=use_blas)
        self.faiss = load_faiss()
        self.requested_kind = kind              # None: by gallery size
        self.kind: str | None = None            # what the snapshot is (None: no snapshot yet)
        self.rebuild_fraction = rebuild_fraction
        self.build_s: float | None = None
        self._ann: Any = None
        self._ann_ids = np.empty(0, dtype=np.int64)     # sorted template ids in the snapshot
        self._dropped = np.empty(0, dtype=np.int64)     # snapshot ids deleted since (a reused id is a new row)
        self._lookup: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._state = threading.RLock()                 # rows and snapshot change together under it
        self._builder: threading.Thread | None = None   # a background build in flight
        self._removed_while_building: list[np.ndarray] = []
        self.build_error: str | None = None             # why the last background build failed, if it did

    @classmethod
    def from_exact(cls, exact: GalleryIndex, **options: Any) -> "FaissIndex":
        """A FaissIndex holding ``exact``'s rows, names and revision (shared buffers; no snapshot built yet)."""
        index = cls(exact.model_id, exact.dim, use_blas=exact.use_blas, **options)
        index.take_rows(exact)
        return index

    # --- bookkeeping -----------------------------------------------------------------------------

    def add(self, template_ids: Iterable[int] | np.ndarray, identity_ids: Iterable[int] | np.ndarray,
            embeddings: np.ndarray) -> int:
        with self._state:
            self._lookup = None
            return super().add(template_ids, identity_ids, embeddings)

    def _drop(self, mask: np.ndarray) -> int:
        with self._state:
            self._lookup = None
            gone = self.template_ids[mask]
            self._dropped = np.union1d(self._dropped, gone[np.isin(gone, self._ann_ids)])
            if self._builder is not None:
                self._removed_while_building.append(gone.copy())
            return super()._drop(mask)

    def clear(self) -> None:
        with self._state:
            self._lookup = None
            self._dropped = self._ann_ids.copy()
            if self._builder is not None:
                self._removed_while_building.append(self.template_ids.copy())
            super().clear()

    @property
    def built(self) -> bool:
        return self._ann is not None

    @property
    def snapshot_ids(self) -> np.ndarray:
        """Sorted template ids the FAISS structure holds."""
        return self._ann_ids

    def row_lookup(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sorted template ids, their rows, rows not in the snapshot), cached until the rows change."""
        with self._state:
            return self._row_lookup()

    def _row_lookup(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._lookup is None:
            tids = self.template_ids
            order = np.argsort(tids, kind="stable")
            sorted_tids = tids[order]
            pending = np.flatnonzero(~np.isin(tids, self._ann_ids, assume_unique=True) | np.isin(tids, self._dropped))
            self._lookup = (sorted_tids, order, pending)
        return self._lookup

    def changes_since_build(self) -> tuple[int, int]:
        """(rows added since the snapshot, snapshot rows deleted since)."""
        _, _, pending = self.row_lookup()
        return len(pending), len(self._dropped)

    @property
    def stale(self) -> bool:
        """True when no snapshot exists or the changes since it exceed ``rebuild_fraction`` of it."""
        if self._ann is None:
            return True
        added, _ = self.changes_since_build()
        return added + len(self._dropped) > max(1000, self.rebuild_fraction * len(self._ann_ids))

    # --- build -----------------------------------------------------------------------------------

    def build(self) -> float:
        """(Re)build the FAISS structure over every current row, blocking; returns the seconds it took."""
        started = time.perf_counter()
        with self._state:
            ids = np.ascontiguousarray(self.template_ids, dtype=np.int64)
            ann, kind = self._build_structure(np.ascontiguousarray(self.matrix), ids)
            self.attach(ann, kind, ids)
        self.build_s = time.perf_counter() - started
        log.info("FAISS %s index of %d templates built in %.1f s", kind, len(ids), self.build_s)
        return self.build_s

    @property
    def state_lock(self) -> threading.RLock:
        """The lock under which rows and snapshot change together (hold it to read both consistently)."""
        return self._state

    @property
    def building(self) -> bool:
        """True while a background build runs."""
        builder = self._builder
        return builder is not None and builder.is_alive()

    def build_in_background(self, on_built: Callable[["FaissIndex"], None] | None = None) -> threading.Thread:
        """Build over a copy of the current rows on a daemon thread; queries meanwhile use the old snapshot (or the
        exact search). When done, the structure is attached (rows deleted meanwhile become tombstones) and
        ``on_built(self)`` runs on that thread (e.g. to save the file). Returns the thread (the one in flight, if
        a build already runs)."""
        with self._state:
            if self.building:
                return self._builder                    # type: ignore[return-value]
            vectors = self.matrix.copy()
            ids = self.template_ids.copy()
            self._removed_while_building = []
            self.build_error = None
            builder = threading.Thread(target=self._build_worker, args=(vectors, ids, on_built),
                                       name=f"faiss-build-{self.model_id}", daemon=True)
            self._builder = builder
            builder.start()
        return builder

    def wait_built(self, timeout: float | None = None) -> bool:
        """Wait for a background build (True when none is running afterwards)."""
        builder = self._builder
        if builder is not None:
            builder.join(timeout)
        return not self.building

    def _build_worker(self, vectors: np.ndarray, ids: np.ndarray,
                      on_built: Callable[["FaissIndex"], None] | None) -> None:
        started = time.perf_counter()
        try:
            ann, kind = self._build_structure(vectors, ids)
            with self._state:
                removed = (np.concatenate(self._removed_while_building) if self._removed_while_building
                           else np.empty(0, dtype=np.int64))
                self.attach(ann, kind, ids)
                self._dropped = np.intersect1d(removed, self._ann_ids)   # deleted (or re-used) since the copy
                self._builder = None
            self.build_s = time.perf_counter() - started
            log.info("FAISS %s index of %d templates built in the background in %.1f s", kind, ids.size, self.build_s)
            if on_built is not None:
                on_built(self)
        except Exception as error:                      # memory, FAISS: the old snapshot / exact keeps serving
            self.build_error = f"building the FAISS index failed ({error}); searching with what was there"
            log.warning("%s", self.build_error)
        finally:
            with self._state:
                if self._builder is threading.current_thread():
                    self._builder = None

    def _build_structure(self, vectors: np.ndarray, ids: np.ndarray) -> tuple[Any, str]:
        """A FAISS structure over ``vectors`` labelled ``ids`` (all cores while it runs; one thread after)."""
        faiss = self.faiss
        count = len(ids)
        kind = self.requested_kind or kind_for(count)
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        try:
            if kind == "hnsw":
                graph = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
                graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
                ann = faiss.IndexIDMap2(graph)
                ann.add_with_ids(vectors, ids)
            else:
                cells = min(ivf_cells(count), max(1, count // 39))      # FAISS wants >= 39 training rows a cell
                quantizer = faiss.IndexFlatIP(self.dim)
                ann = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, cells, faiss.ScalarQuantizer.QT_8bit,
                                                    faiss.METRIC_INNER_PRODUCT)
                sample = vectors
                if count > 40 * cells:
                    sample = vectors[np.random.default_rng(0).choice(count, 40 * cells, replace=False)]
                ann.train(sample)
                ann.add_with_ids(vectors, ids)
        finally:
            faiss.omp_set_num_threads(1)
        return ann, kind

    def attach(self, ann: Any, kind: str, ids: np.ndarray) -> None:
        """Use ``ann`` (a FAISS index labelled by template id, holding exactly ``ids``) as the snapshot."""
        if kind not in KINDS:
            raise ValueError(f"unknown FAISS index kind {kind!r}")
        self._tune(ann, kind)
        with self._state:
            self._ann, self.kind = ann, kind
            self._ann_ids = np.sort(np.asarray(ids, dtype=np.int64))
            self._dropped = np.empty(0, dtype=np.int64)
            self._lookup = None

    def _tune(self, ann: Any, kind: str) -> None:
        if kind == "hnsw":
            self.faiss.downcast_index(ann.index).hnsw.efSearch = HNSW_EF_SEARCH
        else:
            ivf = self.faiss.extract_index_ivf(ann)
            ivf.nprobe = min(ivf.nlist, max(IVF_MIN_PROBE, int(round(ivf.nlist * IVF_PROBE_FRACTION))))

    @property
    def ann(self) -> Any:
        """The FAISS structure (None before ``build``/``attach``)."""
        return self._ann

    def memory_bytes(self) -> int:
        """Bytes of the exact rows plus the FAISS structure (serialised size)."""
        extra = int(self.faiss.serialize_index(self._ann).nbytes) if self._ann is not None else 0
        return int(self.matrix.nbytes + self.template_ids.nbytes + self.identity_ids.nbytes + extra)

    # --- search ----------------------------------------------------------------------------------

    def top_identities(self, probe: np.ndarray, top_k: int = 5) -> list[tuple[int, float]]:
        """The ``top_k`` identities by their best template among FAISS's candidates and the rows added since
        the snapshot, re-scored exactly; the exact search when there is no snapshot."""
        with self._state:
            if self._ann is None:
                return super().top_identities(probe, top_k)
            if top_k <= 0 or len(self) == 0:
                return []
            vector = as_probe(probe, self.dim)
            wanted = min(len(self._ann_ids), max(64, 2 * top_k * self.most_templates))
            if self.kind == "hnsw":
                self.faiss.downcast_index(self._ann.index).hnsw.efSearch = max(HNSW_EF_SEARCH, wanted)
            _, labels = self._ann.search(vector.reshape(1, -1), wanted)
            sorted_tids, order, pending = self._row_lookup()
            labels = labels[0][labels[0] >= 0]
            if self._dropped.size:
                labels = labels[~np.isin(labels, self._dropped)]      # deleted since (or reused: searched exactly)
            at = np.searchsorted(sorted_tids, labels).clip(max=max(len(sorted_tids) - 1, 0))
            found = sorted_tids[at] == labels                     # deleted since the snapshot: gone
            rows = np.concatenate([order[at[found]], pending])
            if rows.size == 0:
                return []
            return best_per_identity(self.identity_ids[rows], self.matrix[rows] @ vector, top_k)
