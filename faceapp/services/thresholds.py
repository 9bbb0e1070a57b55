"""Threshold calibration: labelled score sources, operating points and thresholds at a target FAR.

A ``ScoreSet`` holds one similarity score per genuine (same person) or impostor (different people) pair
of the *active model*, from one of three sources:

- ``protocol_scores``: a pairs protocol (LFW ``pairs.txt`` or CFP's official folder), aligned through the
  alignment cache and scored exactly as ``faceapp eval`` does (same functions), so the numbers agree;
- ``folder_scores``: a labelled folder (``<identity>/<images>``): every image against every other;
- ``gallery_scores``: the enrolled gallery itself, leave-one-out: every stored template of the model
  against every other (genuine = same identity, impostor = different identities).

Every read-out (FAR/FRR at a threshold, EER, threshold at a target FAR, the curves) goes through
``faceapp.evaluation.metrics``, the code ``faceapp eval`` uses. Failed pairs of a protocol (no face in an
image) are scored by the same failure policy as ``faceapp eval`` ("wrong" by default).

Identification: a probe of someone not enrolled is compared with all N enrolled identities, and a false
positive happens when any of the N scores reaches the threshold. With the per-comparison false match
rate f = FAR(t) and scores treated as *independent*, FPIR(t, N) = 1 - (1 - f)^N (``expected_fpir``).
Impostor scores of one probe are in fact correlated, so where a source can search each probe against a
gallery (folder and gallery sources: each image against all images of the *other* identities) the
empirical rate - the fraction of probes whose best impostor score reaches t - is computed as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from faceapp.core.errors import DatasetError
from faceapp.core.progress import CancelToken, Job, Progress
from faceapp.evaluation import metrics
from faceapp.evaluation.verification import pair_scores, verification_report

STANDARD_FARS = (1e-2, 1e-3, 1e-4)
MAX_IMPOSTOR_PAIRS = 500_000          # impostor pairs kept from a labelled source (random sample above it)
HISTOGRAM_BINS = 80
_CHUNK = 1024                          # rows per block when scoring a labelled set against itself


@dataclass
class ScoreSet:
    """Scores of labelled pairs from one source, for one model.

    scores: raw cosine per pair (0 for a failed pair); same: genuine flags; valid: False for a failed pair
    (an image without a face); probe_best_impostor: for sources that can search each probe against the
    rest (folder, gallery), the best score of each probe over the *other* identities, and
    ``search_size`` the number of identities each probe was searched against.
    """

    scores: np.ndarray
    same: np.ndarray
    valid: np.ndarray
    source: str                         # human description, stored with a saved threshold
    kind: str                           # "pairs", "folder" or "gallery"
    model_id: str = ""
    folds: np.ndarray | None = None
    failure_policy: str = "wrong"
    n_images: int = 0
    n_failed_images: int = 0
    n_identities: int = 0
    probe_best_impostor: np.ndarray | None = None
    search_size: int = 0
    report: dict[str, Any] | None = None     # the ``faceapp eval`` report of a pairs protocol
    _roc_scores: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_genuine(self) -> int:
        return int(self.same.sum())

    @property
    def n_impostor(self) -> int:
        return int((~self.same).sum())

    @property
    def n_failed_pairs(self) -> int:
        return int((~self.valid).sum())

    @property
    def roc_scores(self) -> np.ndarray:
        """Scores with failed pairs replaced by the failure policy (what every rate is computed on)."""
        if self._roc_scores is None:
            self._roc_scores = metrics.apply_failure_policy(self.scores, self.same, self.valid, self.failure_policy)
        return self._roc_scores

    def check(self) -> "ScoreSet":
        """DatasetError unless there are genuine and impostor pairs (returns self)."""
        if self.n_genuine == 0 or self.n_impostor == 0:
            raise DatasetError(f"{self.source}: {self.n_genuine} genuine and {self.n_impostor} impostor pairs; "
                               "calibrating a threshold needs both (at least two identities, one with two images)")
        return self

    def describe(self) -> str:
        """One line: source, pair counts, failures."""
        text = f"{self.source}: {self.n_genuine:,} genuine / {self.n_impostor:,} impostor pairs"
        if self.n_identities:
            text += f", {self.n_identities} identities"
        if self.n_failed_images:
            text += f"; no face in {self.n_failed_images} of {self.n_images} images"
            if self.kind == "pairs":
                text += f" ({self.n_failed_pairs} failed pairs counted as errors, policy '{self.failure_policy}')"
            else:
                text += " (left out)"
        return text


@dataclass(frozen=True)
class OperatingPoint:
    """The rates at one threshold (pairs with ``score >= threshold`` accepted)."""

    threshold: float
    far: float                         # FMR: impostor pairs accepted
    frr: float                         # FNMR: genuine pairs rejected
    gallery_size: int                  # N for identification
    fpir_expected: float               # 1 - (1 - far)^N (independence assumption)
    fpir_empirical: float | None       # probes whose best impostor reaches the threshold (None: not measurable)
    search_size: int = 0               # gallery size the empirical FPIR was measured at

    @property
    def tar(self) -> float:
        return 1.0 - self.frr

    def as_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "far": self.far, "frr": self.frr, "tar": self.tar,
                "gallery_size": self.gallery_size, "fpir_expected": self.fpir_expected,
                "fpir_empirical": self.fpir_empirical, "search_size": self.search_size}


@dataclass(frozen=True)
class Curves:
    """Everything the threshold tab draws, computed once per score set."""

    roc: metrics.RocCurve
    eer: float
    eer_threshold: float
    auc: float
    bin_edges: np.ndarray
    genuine_density: np.ndarray
    impostor_density: np.ndarray
    score_range: tuple[float, float]


# ------------------------------------------------------------------------------------------ read-outs
def expected_fpir(far: float, gallery_size: int) -> float:
    """Open-set false positive identification rate at gallery size N with independent scores: 1-(1-f)^N."""
    if gallery_size <= 0:
        return 0.0
    f = min(1.0, max(0.0, float(far)))
    if f >= 1.0:
        return 1.0
    return float(-math.expm1(gallery_size * math.log1p(-f)))


def far_for_fpir(fpir: float, gallery_size: int) -> float:
    """The per-comparison FAR giving ``fpir`` at gallery size N (inverse of ``expected_fpir``)."""
    if not 0.0 < fpir < 1.0:
        raise ValueError(f"target FPIR {fpir} is not in (0, 1)")
    n = max(1, int(gallery_size))
    return float(-math.expm1(math.log1p(-fpir) / n))


def operating_point(scores: ScoreSet, threshold: float, gallery_size: int | None = None) -> OperatingPoint:
    """FAR, FRR and identification rates of ``scores`` at ``threshold`` (``faceapp.evaluation.metrics``)."""
    far, frr = metrics.far_frr_at_threshold(scores.roc_scores, scores.same, threshold)
    n = scores.search_size if gallery_size is None else int(gallery_size)
    empirical = None
    if scores.probe_best_impostor is not None and scores.probe_best_impostor.size:
        empirical = float((scores.probe_best_impostor >= threshold).mean())
    return OperatingPoint(threshold=float(threshold), far=far, frr=frr, gallery_size=n,
                          fpir_expected=expected_fpir(far, n), fpir_empirical=empirical,
                          search_size=scores.search_size)


def clamp_threshold(value: float) -> float:
    """A threshold usable as a cosine similarity: inside [-1, 1]."""
    if math.isnan(value):
        raise ValueError("threshold is NaN")
    return float(min(1.0, max(-1.0, value)))


def threshold_for_far(scores: ScoreSet, far: float) -> float:
    """The lowest threshold with FAR <= ``far`` (``metrics.threshold_at_far``), clamped to [-1, 1]."""
    return clamp_threshold(metrics.threshold_at_far(scores.roc_scores, scores.same, far))


def threshold_for_fpir(scores: ScoreSet, fpir: float, gallery_size: int) -> tuple[float, str]:
    """Identify threshold for a target FPIR at gallery size N, and how it was found.

    Measured on the probes' best impostor scores when the source searched each probe against at least
    N - 1 identities (the leave-one-out search of an N-identity gallery; the rate only grows with N, so a
    much smaller search would be optimistic); otherwise from the per-comparison FAR ``far_for_fpir(fpir, N)``
    under the independence assumption.
    """
    best = scores.probe_best_impostor
    if best is not None and best.size and scores.search_size >= gallery_size - 1:
        labels = np.zeros(best.size, dtype=bool)
        t = metrics.threshold_at_far(best, labels, fpir)
        return clamp_threshold(t), f"measured on {best.size} probes searched against {scores.search_size} identities"
    far = far_for_fpir(fpir, gallery_size)
    return threshold_for_far(scores, far), f"FAR {far:.2g} per comparison, 1-(1-FAR)^N with N = {gallery_size}"


def compute_curves(scores: ScoreSet, bins: int = HISTOGRAM_BINS) -> Curves:
    """ROC (and so DET), EER, AUC and score histograms (densities over the finite scores of valid pairs)."""
    roc_scores = scores.roc_scores
    roc = metrics.roc_curve(roc_scores, scores.same)
    eer_value, eer_t = metrics.eer(roc_scores, scores.same)
    finite = scores.valid & np.isfinite(scores.scores)
    values = scores.scores[finite]
    low, high = (float(values.min()), float(values.max())) if values.size else (-1.0, 1.0)
    if high - low < 1e-6:
        low, high = low - 0.01, high + 0.01
    edges = np.linspace(low, high, bins + 1)
    genuine, _ = np.histogram(scores.scores[finite & scores.same], bins=edges, density=False)
    impostor, _ = np.histogram(scores.scores[finite & ~scores.same], bins=edges, density=False)
    width = edges[1] - edges[0]

    def density(counts: np.ndarray) -> np.ndarray:
        total = counts.sum()
        return counts / (total * width) if total else counts.astype(float)

    return Curves(roc=roc, eer=eer_value, eer_threshold=float(eer_t), auc=metrics.roc_auc(roc_scores, scores.same),
                  bin_edges=edges, genuine_density=density(genuine), impostor_density=density(impostor),
                  score_range=(low, high))


# ------------------------------------------------------------------------------------------- sources
def labelled_scores(embeddings: np.ndarray, labels: np.ndarray, *, max_impostor_pairs: int = MAX_IMPOSTOR_PAIRS,
                    seed: int = 0, cancel: CancelToken | None = None,
                    stage: str = "scores") -> Job[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every row of L2-normalised ``embeddings`` against every other: (scores, same, best impostor per row).

    Every genuine pair (two rows of one label) is scored. Impostor pairs are all scored while there are at
    most ``max_impostor_pairs`` of them; beyond that a seeded uniform random sample of that many (with
    replacement) is, so memory stays bounded for large sets. The best impostor of a row - its highest
    score against any row of another label - is always exact (computed block by block).
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    labels = np.asarray(labels)
    n = emb.shape[0]
    if n < 2:
        raise DatasetError(f"{n} embedding(s): scoring pairs needs at least two")
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    n_impostor = n * (n - 1) // 2 - int((counts * (counts - 1) // 2).sum())
    enumerate_all = n_impostor <= max_impostor_pairs
    best = np.full(n, -np.inf, dtype=np.float64)
    impostor_parts: list[np.ndarray] = []
    for start in range(0, n, _CHUNK):
        if cancel is not None:
            cancel.raise_if_cancelled("scoring")
        stop = min(n, start + _CHUNK)
        block = emb[start:stop] @ emb.T                       # (b, n)
        other = inverse[start:stop, None] != inverse[None, :]
        best[start:stop] = np.where(other, block, -np.inf).max(axis=1)
        if enumerate_all:                                     # impostor pairs (i < j) of these rows
            rows, cols = np.nonzero(other & (np.arange(start, stop)[:, None] < np.arange(n)[None, :]))
            impostor_parts.append(block[rows, cols].astype(np.float64))
        yield Progress(stage, stop, n, message=f"{stop} of {n} rows scored")
    genuine_parts = []
    for group in np.flatnonzero(counts >= 2):
        members = np.flatnonzero(inverse == group)
        sims = emb[members] @ emb[members].T
        genuine_parts.append(sims[np.triu_indices(members.size, k=1)].astype(np.float64))
    if not enumerate_all:
        impostor_parts.append(_sample_impostors(emb, inverse, max_impostor_pairs, seed))
    genuine = np.concatenate(genuine_parts) if genuine_parts else np.empty(0)
    impostor = np.concatenate(impostor_parts) if impostor_parts else np.empty(0)
    scores = np.concatenate([genuine, impostor])
    same = np.r_[np.ones(genuine.size, dtype=bool), np.zeros(impostor.size, dtype=bool)]
    return scores, same, best


def _sample_impostors(emb: np.ndarray, inverse: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Scores of ``count`` uniformly drawn pairs of rows with different labels (rejection sampling)."""
    rng = np.random.default_rng(seed)
    n = emb.shape[0]
    out: list[np.ndarray] = []
    needed = count
    while needed > 0:
        draw = min(needed, 50_000) * 2                        # bounded memory: rows are gathered per chunk
        i = rng.integers(0, n, size=draw)
        j = rng.integers(0, n, size=draw)
        keep = inverse[i] != inverse[j]
        i, j = i[keep][:needed][: draw // 2], j[keep][:needed][: draw // 2]
        out.append(np.einsum("ij,ij->i", emb[i], emb[j]).astype(np.float64))
        needed -= i.size
    return np.concatenate(out)


def protocol_scores(embedder: Any, fmt: str, pairs: str | Path, root: str | Path | None = None, *,
                    cfp_protocol: str = "FF", folds: Iterable[int] | None = None, failure_policy: str = "wrong",
                    cache_root: Path | None = None, cancel: CancelToken | None = None) -> Job[ScoreSet]:
    """Scores of a pairs protocol with ``embedder``, computed exactly as ``faceapp eval`` computes them."""
    from faceapp.evaluation.protocols import read_protocol
    from faceapp.data.evaluate import align_protocol, embed_aligned

    protocol = read_protocol(fmt, pairs, root, cfp_protocol=cfp_protocol, folds=folds)
    aligned = yield from align_protocol(protocol, cache_root=cache_root, cancel=cancel)
    embeddings = yield from embed_aligned(embedder.embed, aligned, cancel=cancel)
    scores, valid = pair_scores(embeddings, protocol.pairs, aligned.ok)
    report = verification_report(scores, protocol.same, folds=protocol.folds, valid=valid, protocol=protocol.name,
                                 n_images=len(aligned), n_failed_images=aligned.n_failed,
                                 failure_policy=failure_policy)
    identities = len({p.parent for p in protocol.images})
    return ScoreSet(scores=scores, same=np.asarray(protocol.same, dtype=bool), valid=valid,
                    source=f"pairs protocol {protocol.name}", kind="pairs", model_id=embedder.model_id,
                    folds=protocol.folds, failure_policy=failure_policy, n_images=len(aligned),
                    n_failed_images=aligned.n_failed, n_identities=identities, report=report.to_dict()).check()


def folder_scores(embedder: Any, folder: str | Path, *, identities: str = "", max_per_identity: int = 0,
                  max_impostor_pairs: int = MAX_IMPOSTOR_PAIRS, cache_root: Path | None = None,
                  cancel: CancelToken | None = None) -> Job[ScoreSet]:
    """Scores of a labelled folder: every aligned image against every other (images without a face are
    left out and counted)."""
    from faceapp.data.cache import align_images
    from faceapp.data.datasets import DatasetSpec, scan_dataset
    from faceapp.data.evaluate import embed_aligned

    listing = scan_dataset(DatasetSpec(path=str(folder), identities=identities, max_per_identity=max_per_identity))
    aligned = yield from align_images(listing.items, name=listing.name, cache_root=cache_root, cancel=cancel)
    embeddings = yield from embed_aligned(embedder.embed, aligned, cancel=cancel)
    rows = np.flatnonzero(aligned.ok)
    names = np.asarray([aligned.identities[r] for r in rows])
    scores, same, best = yield from labelled_scores(embeddings[rows], names, max_impostor_pairs=max_impostor_pairs,
                                                    cancel=cancel)
    n_ids = len(set(names.tolist()))
    return ScoreSet(scores=scores, same=same, valid=np.ones(scores.size, dtype=bool),
                    source=f"labelled folder {listing.root}", kind="folder", model_id=embedder.model_id,
                    n_images=len(aligned), n_failed_images=aligned.n_failed, n_identities=n_ids,
                    probe_best_impostor=best[np.isfinite(best)], search_size=max(0, n_ids - 1)).check()


def gallery_scores(store: Any, model_id: str, dim: int, *, max_impostor_pairs: int = MAX_IMPOSTOR_PAIRS,
                   cancel: CancelToken | None = None) -> Job[ScoreSet]:
    """Leave-one-out scores of the enrolled gallery: every stored template of ``model_id`` against every other."""
    yield Progress("gallery", 0, None, message=f"reading the templates of {model_id}")
    rows = store.templates.gallery_rows(model_id, dim)
    if rows.template_ids.size < 2:
        raise DatasetError(f"the gallery has {rows.template_ids.size} template(s) of model {model_id}: enrol "
                           "people (or re-embed the gallery for this model) before calibrating on it")
    from faceapp.matching.index import normalize_rows

    scores, same, best = yield from labelled_scores(normalize_rows(rows.embeddings), rows.identity_ids,
                                                    max_impostor_pairs=max_impostor_pairs, cancel=cancel)
    n_ids = int(np.unique(rows.identity_ids).size)
    return ScoreSet(scores=scores, same=same, valid=np.ones(scores.size, dtype=bool),
                    source=f"gallery leave-one-out ({rows.template_ids.size} templates)", kind="gallery",
                    model_id=model_id, n_images=int(rows.template_ids.size), n_identities=n_ids,
                    probe_best_impostor=best[np.isfinite(best)], search_size=max(0, n_ids - 1)).check()


def searchable_identities(store: Any, model_id: str) -> int:
    """Identities with at least one template of ``model_id``: the gallery size N of identification."""
    return int(store.templates.counts_by_model().get(model_id, {}).get("identities", 0))


def save_thresholds(store: Any, model: Any, *, verify: float, identify: float, target_far: float | None = None,
                    source: str = "manual", operator: str | None = None) -> Any:
    """The one route that saves thresholds (Thresholds tab, Live page "Save for model", ``faceapp thresholds
    set``, ``Gallery.save_thresholds``): stores them for ``model`` (a ``ModelSpec``) exactly as given (never
    rounded; FieldError outside [-1, 1]) with their calibration source, the date (now) and the operator
    (default: $FACEAPP_OPERATOR, else the login name), and audits it. Returns the stored ``ThresholdRecord``."""
    if operator is None:
        from faceapp.services.gallery import default_operator

        operator = default_operator()
    return store.thresholds.set(model, verify=float(verify), identify=float(identify), target_far=target_far,
                                source=source, operator=operator)
