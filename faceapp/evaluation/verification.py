"""Scoring a pair protocol from embeddings, and the report every verification number comes from.

Failure rule (documented in docs/training.md): an image where no face was found cannot be embedded;
every pair using it is a *failed pair*. Failed pairs are never dropped. ``failure_policy`` decides how
they count, in the accuracy and the ROC family alike: "wrong" (the default) makes each one an error at
every threshold; "reject" answers it "different" (score -inf, the NIST FRVT convention: a false reject
for a genuine pair, a correct reject for an impostor pair). Their number is reported, and
``accuracy_faces_only`` gives the accuracy over the pairs where both faces were found.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from faceapp.evaluation import metrics

DEFAULT_FARS = (1e-2, 1e-3)


def pair_scores(embeddings: np.ndarray, pairs: np.ndarray, image_ok: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of index pairs over L2-normalised ``embeddings`` (one row per image), and the
    per-pair validity (both images had a face). Rows of failed images are ignored (score 0)."""
    emb = np.asarray(embeddings, dtype=np.float32)
    pairs = np.asarray(pairs, dtype=np.int64)
    ok = np.ones(emb.shape[0], dtype=bool) if image_ok is None else np.asarray(image_ok, dtype=bool)
    valid = ok[pairs[:, 0]] & ok[pairs[:, 1]]
    scores = np.einsum("ij,ij->i", emb[pairs[:, 0]], emb[pairs[:, 1]]).astype(np.float64)
    scores[~valid] = 0.0
    return scores, valid


@dataclass
class VerificationReport:
    """Every number of one verification run; ``to_dict`` is the ``--json`` output and the model card entry."""

    protocol: str
    n_pairs: int
    n_genuine: int
    n_impostor: int
    n_images: int
    n_failed_images: int
    n_failed_pairs: int
    failure_policy: str
    accuracy: float                      # mean k-fold accuracy, failed pairs wrong
    accuracy_std: float
    fold_accuracies: list[float]
    fold_thresholds: list[float]
    folds: list[int]
    optimistic: bool                     # one fold only: threshold tuned on the test pairs themselves
    accuracy_faces_only: float | None    # k-fold accuracy over pairs where both faces were found
    auc: float
    eer: float
    eer_threshold: float
    tar_at_far: dict[str, float]
    threshold: float                     # best-accuracy threshold over all pairs (a deployment hint)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """A few human lines (the CLI's text output)."""
        tars = ", ".join(f"TAR@FAR={k} {v:.4f}" for k, v in self.tar_at_far.items())
        lines = [
            f"{self.protocol}: {self.n_pairs} pairs ({self.n_genuine} same, {self.n_impostor} different), "
            f"{len(self.folds)} folds",
            f"accuracy {self.accuracy * 100:.2f}% +- {self.accuracy_std * 100:.2f}"
            + (" (optimistic: one fold, threshold tuned on it)" if self.optimistic else ""),
            f"AUC {self.auc:.4f}, EER {self.eer * 100:.2f}% (threshold {self.eer_threshold:.4f}), {tars}",
            f"no face found in {self.n_failed_images} of {self.n_images} images -> {self.n_failed_pairs} failed "
            f"pairs ({'counted as errors' if self.failure_policy == 'wrong' else 'answered different'}, policy "
            f"'{self.failure_policy}')",
        ]
        if self.n_failed_pairs and self.accuracy_faces_only is not None:
            lines.append(f"accuracy over pairs with both faces found: {self.accuracy_faces_only * 100:.2f}%")
        return "\n".join(lines)


def _finite_threshold(value: float) -> float:
    return float(value) if np.isfinite(value) else float(np.sign(value) * 1e9)


def verification_report(scores: np.ndarray, same: np.ndarray, *, folds: np.ndarray | None = None,
                        valid: np.ndarray | None = None, protocol: str = "pairs", n_images: int = 0,
                        n_failed_images: int = 0, failure_policy: str = "wrong",
                        fars: Sequence[float] = DEFAULT_FARS, k: int = 10) -> VerificationReport:
    """All verification metrics of one scored protocol (see the module doc for the failure rule)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    v = np.ones(s.size, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    roc_scores = metrics.apply_failure_policy(s, y, v, failure_policy)
    # "wrong": failed pairs are errors; "reject": they are answered "different" (-inf, never accepted)
    acc_scores, acc_valid = (s, v) if failure_policy == "wrong" else (roc_scores, None)
    kf = metrics.kfold_accuracy(acc_scores, y, folds, k=k, valid=acc_valid)
    faces_only = None
    if v.any() and y[v].any() and (~y[v]).any():
        f_sub = None if folds is None else np.asarray(folds)[v]
        faces_only = metrics.kfold_accuracy(s[v], y[v], f_sub, k=k).mean
    eer_value, eer_t = metrics.eer(roc_scores, y)
    threshold, _ = metrics.best_threshold(acc_scores, y, acc_valid)
    return VerificationReport(
        protocol=protocol,
        n_pairs=int(s.size), n_genuine=int(y.sum()), n_impostor=int((~y).sum()),
        n_images=int(n_images), n_failed_images=int(n_failed_images), n_failed_pairs=int((~v).sum()),
        failure_policy=failure_policy,
        accuracy=kf.mean, accuracy_std=kf.std,
        fold_accuracies=[float(a) for a in kf.accuracies], fold_thresholds=[float(t) for t in kf.thresholds],
        folds=[int(f) for f in kf.fold_ids], optimistic=kf.optimistic, accuracy_faces_only=faces_only,
        auc=metrics.roc_auc(roc_scores, y), eer=eer_value, eer_threshold=_finite_threshold(eer_t),
        tar_at_far={f"{far:g}": metrics.tar_at_far(roc_scores, y, far) for far in fars},
        threshold=threshold,
    )
