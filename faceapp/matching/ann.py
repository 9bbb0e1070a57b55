"""Approximate gallery search on FAISS (``faiss-cpu``, the optional ``ann`` extra): HNSW or IVF.

``FaissIndex`` is a ``GalleryIndex`` (it keeps the exact rows: verification, re-ranking, the exact fallback)
plus a FAISS graph or inverted file over a snapshot of those rows, labelled by template id. A query asks
FAISS for the nearest ``candidates`` templates, re-scores them exactly against the stored rows, adds the
rows enrolled since the snapshot (searched exactly), drops rows deleted since (tombstones), and ranks
identities by their best template, as the exact index does. When the rows added or deleted since the
snapshot pass ``rebuild_fraction`` of it, ``stale`` turns true and the owner rebuilds.

Which structure: HNSW (graph; the better recall@5, build grows ~N log N; a copy of the rows + ~290 bytes of links
a row at M=32) up to ``HNSW_MAX_TEMPLATES``, IVF-Flat (k-means cells; ten times cheaper to build, smaller) above
it (docs/scaling.md has the measurements). Both use the inner product of unit rows, i.e. the cosine.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Iterable

import numpy as np

from faceapp.core.errors import FaceAppError, ExitCode
from faceapp.matching.index import GalleryIndex, as_probe, best_per_identity

log = logging.getLogger(__name__)

KINDS = ("hnsw", "ivf")
HNSW_MAX_TEMPLATES = 250_000       # above: IVF (HNSW build: 172 s per 100k templates on the loaded 2-core box; docs/scaling.md)
HNSW_M = 32                        # graph degree
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 64
IVF_PROBE_FRACTION = 1 / 16        # cells visited per query (at least IVF_MIN_PROBE)
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

    @classmethod
    def from_exact(cls, exact: GalleryIndex, **options: Any) -> "FaissIndex":
        """A FaissIndex holding ``exact``'s rows, names and revision (shared buffers; no snapshot built yet)."""
        index = cls(exact.model_id, exact.dim, use_blas=exact.use_blas, **options)
        index.take_rows(exact)
        return index

    # --- bookkeeping -----------------------------------------------------------------------------

    def add(self, template_ids: Iterable[int] | np.ndarray, identity_ids: Iterable[int] | np.ndarray,
            embeddings: np.ndarray) -> int:
        self._lookup = None
        return super().add(template_ids, identity_ids, embeddings)

    def _drop(self, mask: np.ndarray) -> int:
        self._lookup = None
        gone = self.template_ids[mask]
        self._dropped = np.union1d(self._dropped, gone[np.isin(gone, self._ann_ids)])
        return super()._drop(mask)

    def clear(self) -> None:
        self._lookup = None
        self._dropped = self._ann_ids.copy()
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
        """(Re)build the FAISS structure over every current row; returns the seconds it took."""
        faiss = self.faiss
        started = time.perf_counter()
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        try:
            ann, kind = self._build_structure()
        finally:
            faiss.omp_set_num_threads(1)
        self.attach(ann, kind, self.template_ids)
        self.build_s = time.perf_counter() - started
        log.info("FAISS %s index of %d templates built in %.1f s", kind, len(self), self.build_s)
        return self.build_s

    def _build_structure(self) -> tuple[Any, str]:
        faiss = self.faiss
        count = len(self)
        kind = self.requested_kind or kind_for(count)
        vectors = np.ascontiguousarray(self.matrix)
        ids = np.ascontiguousarray(self.template_ids, dtype=np.int64)
        if kind == "hnsw":
            graph = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            ann = faiss.IndexIDMap2(graph)
            ann.add_with_ids(vectors, ids)
        else:
            cells = min(ivf_cells(count), max(1, count // 39))      # FAISS wants >= 39 training rows a cell
            quantizer = faiss.IndexFlatIP(self.dim)
            ann = faiss.IndexIVFFlat(quantizer, self.dim, cells, faiss.METRIC_INNER_PRODUCT)
            sample = vectors
            if count > 40 * cells:
                sample = vectors[np.random.default_rng(0).choice(count, 40 * cells, replace=False)]
            ann.train(sample)
            ann.add_with_ids(vectors, ids)
        return ann, kind

    def attach(self, ann: Any, kind: str, ids: np.ndarray) -> None:
        """Use ``ann`` (a FAISS index labelled by template id, holding exactly ``ids``) as the snapshot."""
        if kind not in KINDS:
            raise ValueError(f"unknown FAISS index kind {kind!r}")
        self._ann, self.kind = ann, kind
        self._ann_ids = np.sort(np.asarray(ids, dtype=np.int64))
        self._dropped = np.empty(0, dtype=np.int64)
        self._lookup = None
        self._tune(ann, kind)

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
        if self._ann is None:
            return super().top_identities(probe, top_k)
        if top_k <= 0 or len(self) == 0:
            return []
        vector = as_probe(probe, self.dim)
        most = max(self._counts.values())
        wanted = min(len(self._ann_ids), max(64, 2 * top_k * most))
        if self.kind == "hnsw":
            self.faiss.downcast_index(self._ann.index).hnsw.efSearch = max(HNSW_EF_SEARCH, wanted)
        _, labels = self._ann.search(vector.reshape(1, -1), wanted)
        sorted_tids, order, pending = self.row_lookup()
        labels = labels[0][labels[0] >= 0]
        if self._dropped.size:
            labels = labels[~np.isin(labels, self._dropped)]          # deleted since (or reused: searched exactly)
        at = np.searchsorted(sorted_tids, labels).clip(max=max(len(sorted_tids) - 1, 0))
        found = sorted_tids[at] == labels                         # deleted since the snapshot: gone
        rows = np.concatenate([order[at[found]], pending])
        if rows.size == 0:
            return []
        return best_per_identity(self.identity_ids[rows], self.matrix[rows] @ vector, top_k)
