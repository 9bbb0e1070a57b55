"""Closed-set identification (rank-k) on a gallery/probe split of labelled embeddings. Pure numpy.

Each identity is scored by its best-matching gallery template (max cosine). Probes whose image had no
face count as misses; identities whose gallery images all failed cannot be found (their probes miss).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np


def split_gallery_probe(labels: Sequence[Any], n_gallery: int = 1, ok: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(gallery indices, probe indices): per identity, the first ``n_gallery`` images (in the given
    order) that had a face are the gallery, every other image of that identity is a probe."""
    labels = list(labels)
    ok_arr = np.ones(len(labels), dtype=bool) if ok is None else np.asarray(ok, dtype=bool)
    taken: dict[Any, int] = {}
    gallery, probes = [], []
    for i, label in enumerate(labels):
        if ok_arr[i] and taken.get(label, 0) < n_gallery:
            taken[label] = taken.get(label, 0) + 1
            gallery.append(i)
        else:
            probes.append(i)
    return np.asarray(gallery, dtype=np.int64), np.asarray(probes, dtype=np.int64)


@dataclass
class IdentificationReport:
    """Rank-k accuracies of one closed-set identification run."""

    n_identities: int
    n_gallery: int
    n_probes: int
    n_failed_probes: int
    rank1: float
    rank5: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (f"closed-set identification: {self.n_probes} probes against {self.n_gallery} gallery images of "
                f"{self.n_identities} identities: rank-1 {self.rank1 * 100:.2f}%, rank-5 {self.rank5 * 100:.2f}% "
                f"({self.n_failed_probes} probes without a face counted as misses)")


def identity_scores(gallery: np.ndarray, gallery_labels: Sequence[Any], probes: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """(P, I) best cosine of each probe against each identity's templates, and the identity order."""
    g = np.asarray(gallery, dtype=np.float32)
    p = np.asarray(probes, dtype=np.float32)
    names = list(dict.fromkeys(gallery_labels))
    lab = np.asarray([names.index(x) for x in gallery_labels])
    sims = p @ g.T
    out = np.full((p.shape[0], len(names)), -np.inf, dtype=np.float32)
    for k in range(len(names)):
        out[:, k] = sims[:, lab == k].max(axis=1)
    return out, names


def rank_k_accuracy(gallery: np.ndarray, gallery_labels: Sequence[Any], probes: np.ndarray,
                    probe_labels: Sequence[Any], k: int = 1, probe_ok: np.ndarray | None = None) -> float:
    """Fraction of probes whose identity is among the k best-scoring gallery identities."""
    probe_labels = list(probe_labels)
    if not probe_labels:
        raise ValueError("rank-k accuracy needs at least one probe")
    ok = np.ones(len(probe_labels), dtype=bool) if probe_ok is None else np.asarray(probe_ok, dtype=bool)
    if len(gallery_labels) == 0:
        return 0.0
    scores, names = identity_scores(gallery, gallery_labels, probes)
    # rank of the true identity = number of identities scoring strictly higher (ties favour the truth)
    hits = np.zeros(len(probe_labels), dtype=bool)
    for i, label in enumerate(probe_labels):
        if not ok[i] or label not in names:
            continue
        true = scores[i, names.index(label)]
        hits[i] = int((scores[i] > true).sum()) < k
    return float(hits.mean())


def identification_report(embeddings: np.ndarray, labels: Sequence[Any], ok: np.ndarray | None = None,
                          n_gallery: int = 1) -> IdentificationReport:
    """Split (first ``n_gallery`` images with a face per identity = gallery), then rank-1 and rank-5."""
    labels = list(labels)
    ok_arr = np.ones(len(labels), dtype=bool) if ok is None else np.asarray(ok, dtype=bool)
    g_idx, p_idx = split_gallery_probe(labels, n_gallery, ok_arr)
    emb = np.asarray(embeddings, dtype=np.float32)
    g_labels = [labels[i] for i in g_idx]
    p_labels = [labels[i] for i in p_idx]
    args = (emb[g_idx], g_labels, emb[p_idx], p_labels)
    return IdentificationReport(
        n_identities=len(set(labels)), n_gallery=int(g_idx.size), n_probes=int(p_idx.size),
        n_failed_probes=int((~ok_arr[p_idx]).sum()),
        rank1=rank_k_accuracy(*args, k=1, probe_ok=ok_arr[p_idx]) if p_idx.size else 0.0,
        rank5=rank_k_accuracy(*args, k=5, probe_ok=ok_arr[p_idx]) if p_idx.size else 0.0,
    )
