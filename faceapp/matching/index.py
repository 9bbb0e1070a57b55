"""An in-memory gallery of one model's templates: a contiguous float32 matrix searched exactly.

Rows are L2-normalised on insertion, so a cosine similarity is a dot product and scoring a probe
against the whole gallery is one matrix-vector product. By default the product runs in numpy's own
single-threaded SIMD loop (``einsum``): search is memory-bound, and on a small CPU shared with the camera,
detector and embedder threads a multi-threaded BLAS call waits for descheduled threads (measured on the
2-core workstation under load: 100k x 128 took 20 ms through BLAS, 1.7 ms through einsum).
``use_blas=True`` hands it to the BLAS library instead (faster on an idle many-core server). Identification ranks identities by their best
template: the top-k identities are always among the ``k * m`` best templates (``m`` = most templates any
one identity has), so only those are sorted. Rows are appended into a buffer that grows by doubling
and removed by compaction; ``template_ids`` tie each row back to the store.
"""

from __future__ import annotations

from typing import Iterable, Protocol

import numpy as np

from faceapp.core.errors import IncompatibleError


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """float32 copy of ``matrix`` (N, D) with unit rows; all-zero rows stay zero."""
    array = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.divide(array, norms, out=np.zeros_like(array), where=norms > 0)


def as_probe(vector: np.ndarray, dim: int) -> np.ndarray:
    """A unit float32 probe of ``dim`` values; IncompatibleError for another size or a zero vector."""
    probe = np.asarray(vector, dtype=np.float32).reshape(-1)
    if probe.size != dim:
        raise IncompatibleError(f"probe embedding has {probe.size} values but the gallery's model uses {dim}: "
                                "embed the probe with the gallery's model (or re-embed the gallery)")
    norm = float(np.linalg.norm(probe))
    if not np.isfinite(norm) or norm == 0.0:
        raise IncompatibleError("probe embedding is zero or not finite")
    return probe / norm


def best_per_identity(identity_ids: np.ndarray, scores: np.ndarray, top_k: int) -> list[tuple[int, float]]:
    """The ``top_k`` identities by their best score among these rows (any order), best first."""
    ranked = np.argsort(-scores, kind="stable")
    best: dict[int, float] = {}
    for identity_id, score in zip(identity_ids[ranked].tolist(), scores[ranked].tolist()):
        if identity_id not in best:
            best[identity_id] = score
            if len(best) == top_k:
                break
    return list(best.items())


class SearchIndex(Protocol):
    """What the matcher and the gallery service need of an index: the exact ``GalleryIndex`` and the
    approximate ``faceapp.matching.ann.FaissIndex`` both fit (the latter is a GalleryIndex)."""

    model_id: str
    dim: int
    revision: int
    names: dict[int, str]
    kind: str | None

    def __len__(self) -> int: ...
    @property
    def template_ids(self) -> np.ndarray: ...
    @property
    def identity_count(self) -> int: ...
    def name(self, identity_id: int) -> str: ...
    def add(self, template_ids: Iterable[int] | np.ndarray, identity_ids: Iterable[int] | np.ndarray,
            embeddings: np.ndarray) -> int: ...
    def remove_templates(self, template_ids: Iterable[int] | np.ndarray) -> int: ...
    def clear(self) -> None: ...
    def rows_of(self, identity_id: int) -> np.ndarray: ...
    def top_identities(self, probe: np.ndarray, top_k: int = 5) -> list[tuple[int, float]]: ...


class GalleryIndex:
    """Templates of one ``model_id`` and ``dim``: matrix rows, their template ids and identity ids."""

    def __init__(self, model_id: str, dim: int, *, use_blas: bool = False) -> None:
        if dim <= 0:
            raise IncompatibleError(f"gallery dimension must be positive, got {dim}")
        self.model_id = model_id
        self.dim = dim
        self.use_blas = use_blas
        self.kind: str | None = "exact"          # the search it runs ("exact"; FaissIndex: "hnsw" / "ivf")
        self.revision = -1                       # store revision the index reflects (-1: never synced)
        self.names: dict[int, str] = {}          # identity id -> display name
        self._n = 0
        self._matrix = np.empty((0, dim), dtype=np.float32)
        self._template_ids = np.empty(0, dtype=np.int64)
        self._identity_ids = np.empty(0, dtype=np.int64)
        self._counts: dict[int, int] = {}        # identity id -> rows
        self._most: int | None = None            # max(_counts.values()), cached (None: recompute)

    # --- contents --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    @property
    def matrix(self) -> np.ndarray:
        """(N, D) C-contiguous float32 view of the unit rows."""
        return self._matrix[: self._n]

    @property
    def template_ids(self) -> np.ndarray:
        return self._template_ids[: self._n]

    @property
    def identity_ids(self) -> np.ndarray:
        return self._identity_ids[: self._n]

    @property
    def identity_count(self) -> int:
        return len(self._counts)

    def identities(self) -> list[int]:
        """Ids of the identities with at least one row."""
        return list(self._counts)

    def templates_of(self, identity_id: int) -> int:
        return self._counts.get(int(identity_id), 0)

    @property
    def most_templates(self) -> int:
        """The most rows any one identity has (0 when empty); cached, since a search needs it on every query and
        scanning 200k identities for it cost ~3 ms a query at 1 M templates."""
        if self._most is None:
            self._most = max(self._counts.values(), default=0)
        return self._most

    def name(self, identity_id: int) -> str:
        return self.names.get(int(identity_id), f"#{identity_id}")

    # --- changes ---------------------------------------------------------------------------------

    def add(self, template_ids: Iterable[int] | np.ndarray, identity_ids: Iterable[int] | np.ndarray,
            embeddings: np.ndarray) -> int:
        """Append rows (normalised here); IncompatibleError when the embedding size is not ``dim``."""
        vectors = np.asarray(embeddings, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise IncompatibleError(f"embeddings of shape {vectors.shape} cannot join a gallery of dimension "
                                    f"{self.dim} (model {self.model_id})")
        tids = np.asarray(list(template_ids) if not isinstance(template_ids, np.ndarray) else template_ids, dtype=np.int64)
        iids = np.asarray(list(identity_ids) if not isinstance(identity_ids, np.ndarray) else identity_ids, dtype=np.int64)
        count = vectors.shape[0]
        if tids.shape != (count,) or iids.shape != (count,):
            raise ValueError(f"{count} embeddings need {count} template ids and identity ids")
        if count == 0:
            return 0
        self._reserve(self._n + count)
        end = self._n + count
        self._matrix[self._n:end] = normalize_rows(vectors)
        self._template_ids[self._n:end] = tids
        self._identity_ids[self._n:end] = iids
        self._n = end
        self._most = None
        for identity_id, rows in zip(*np.unique(iids, return_counts=True)):
            self._counts[int(identity_id)] = self._counts.get(int(identity_id), 0) + int(rows)
        return count

    def remove_templates(self, template_ids: Iterable[int] | np.ndarray) -> int:
        """Drop the rows of these template ids; returns how many were present."""
        ids = np.asarray(list(template_ids) if not isinstance(template_ids, np.ndarray) else template_ids, dtype=np.int64)
        if ids.size == 0 or self._n == 0:
            return 0
        return self._drop(np.isin(self.template_ids, ids))

    def remove_identity(self, identity_id: int) -> int:
        """Drop every row of one identity; returns how many."""
        if int(identity_id) not in self._counts:
            return 0
        return self._drop(self.identity_ids == int(identity_id))

    def clear(self) -> None:
        self._n = 0
        self._counts.clear()
        self._most = None

    def take_rows(self, other: "GalleryIndex") -> None:
        """Hold ``other``'s rows, names and revision (its buffers, not a copy: ``other`` is then discarded)."""
        if (other.model_id, other.dim) != (self.model_id, self.dim):
            raise IncompatibleError(f"cannot take the rows of {other.model_id} ({other.dim} values) into "
                                    f"{self.model_id} ({self.dim} values)")
        self._matrix, self._template_ids, self._identity_ids = other._matrix, other._template_ids, other._identity_ids
        self._n, self._counts, self._most = other._n, dict(other._counts), None
        self.names, self.revision = dict(other.names), other.revision

    def _drop(self, mask: np.ndarray) -> int:
        removed = int(mask.sum())
        if not removed:
            return 0
        keep = ~mask
        kept = self._n - removed
        gone_ids, gone_counts = np.unique(self.identity_ids[mask], return_counts=True)
        self._matrix[:kept] = self.matrix[keep]
        self._template_ids[:kept] = self.template_ids[keep]
        self._identity_ids[:kept] = self.identity_ids[keep]
        self._n = kept
        self._most = None
        for identity_id, rows in zip(gone_ids, gone_counts):
            left = self._counts.get(int(identity_id), 0) - int(rows)
            if left > 0:
                self._counts[int(identity_id)] = left
            else:
                self._counts.pop(int(identity_id), None)
        return removed

    def _reserve(self, size: int) -> None:
        capacity = self._matrix.shape[0]
        if size <= capacity:
            return
        new_capacity = max(size, 2 * capacity, 64)
        matrix = np.empty((new_capacity, self.dim), dtype=np.float32)
        matrix[: self._n] = self.matrix
        tids = np.empty(new_capacity, dtype=np.int64)
        tids[: self._n] = self.template_ids
        iids = np.empty(new_capacity, dtype=np.int64)
        iids[: self._n] = self.identity_ids
        self._matrix, self._template_ids, self._identity_ids = matrix, tids, iids

    # --- search ----------------------------------------------------------------------------------

    def scores(self, probe: np.ndarray) -> np.ndarray:
        """Cosine similarity of a probe with every row, (N,) float32: one matrix-vector product."""
        vector = as_probe(probe, self.dim)
        if self.use_blas:
            return self.matrix @ vector
        return np.einsum("ij,j->i", self.matrix, vector)

    def rows_of(self, identity_id: int) -> np.ndarray:
        """(k, D) unit rows of one identity (k may be 0)."""
        if int(identity_id) not in self._counts:
            return np.empty((0, self.dim), dtype=np.float32)
        return self.matrix[self.identity_ids == int(identity_id)]

    def top_identities(self, probe: np.ndarray, top_k: int = 5) -> list[tuple[int, float]]:
        """The ``top_k`` identities by their best template's cosine with the probe, best first (exact)."""
        if top_k <= 0 or self._n == 0:
            return []
        scores = self.scores(probe)
        width = min(self._n, top_k * self.most_templates)
        if width < self._n:
            rows = np.argpartition(scores, self._n - width)[self._n - width:]
        else:
            rows = np.arange(self._n)
        return best_per_identity(self.identity_ids[rows], scores[rows], top_k)
