"""Verification metrics on similarity scores: pure numpy, reusable by the trainer, the CLI, the GUI's
threshold tab and the identity store's calibration.

Conventions (every function here):

- ``scores``: higher means "more likely the same person" (cosine similarity for FaceApp's embedders).
- ``labels``: True for a genuine pair (same person), False for an impostor pair.
- A pair is *accepted* ("same") when ``score >= threshold``.
- FAR = accepted impostors / impostors; FRR = rejected genuines / genuines; TAR = 1 - FRR.
- ``valid`` (optional, bool per pair): False marks a *failed* pair (an image where no face was found).
  A failed pair is a wrong decision whatever its label and whatever the threshold: it counts in the
  denominator of every accuracy and never as a correct answer. Thresholds are chosen on valid pairs only.
  For the ROC family (which needs one score per pair) use ``apply_failure_policy`` first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FAILURE_POLICIES = ("wrong", "reject")


def _as_arrays(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).astype(bool).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"scores ({s.size}) and labels ({y.size}) differ in length")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return s, y


def _valid_mask(valid: np.ndarray | None, n: int) -> np.ndarray:
    if valid is None:
        return np.ones(n, dtype=bool)
    v = np.asarray(valid).astype(bool).reshape(-1)
    if v.size != n:
        raise ValueError(f"valid ({v.size}) and scores ({n}) differ in length")
    return v


def _need_both_classes(y: np.ndarray, what: str) -> None:
    if y.all() or not y.any():
        raise ValueError(f"{what} needs both genuine and impostor pairs")


def apply_failure_policy(scores: np.ndarray, labels: np.ndarray, valid: np.ndarray | None,
                         policy: str = "wrong") -> np.ndarray:
    """Scores where failed pairs are replaced so the ROC family can count them.

    ``"wrong"`` (default, the strict rule): a failed genuine pair gets -inf (never accepted) and a failed
    impostor pair +inf (always accepted), so each failed pair is an error at every threshold.
    ``"reject"`` (the NIST FRVT convention): every failed pair gets -inf, i.e. it is answered
    "different" - a false reject for a genuine pair, a correct reject for an impostor pair.
    """
    s, y = _as_arrays(scores, labels)
    v = _valid_mask(valid, s.size)
    if policy not in FAILURE_POLICIES:
        raise ValueError(f"failure policy {policy!r}: expected one of {', '.join(FAILURE_POLICIES)}")
    out = s.copy()
    failed = ~v
    if policy == "wrong":
        out[failed & y] = -np.inf
        out[failed & ~y] = np.inf
    else:
        out[failed] = -np.inf
    return out


@dataclass(frozen=True)
class RocCurve:
    """ROC points in order of decreasing threshold; the first point is (0, 0) at threshold +inf."""

    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray

    @property
    def frr(self) -> np.ndarray:
        return 1.0 - self.tar


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> RocCurve:
    """FAR and TAR at every distinct score used as threshold (``score >= t`` accepted), ties grouped."""
    s, y = _as_arrays(scores, labels)
    _need_both_classes(y, "a ROC curve")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # the last index of each run of equal scores: all tied pairs change side together
    last = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), s_sorted.size - 1]
    tp = np.cumsum(y_sorted)[last]
    fp = np.cumsum(~y_sorted)[last]
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    far = np.r_[0.0, fp / n_neg]
    tar = np.r_[0.0, tp / n_pos]
    thresholds = np.r_[np.inf, s_sorted[last]]
    return RocCurve(far=far, tar=tar, thresholds=thresholds)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = P(genuine score > impostor score) + 0.5 P(tie) (Mann-Whitney U)."""
    s, y = _as_arrays(scores, labels)
    _need_both_classes(y, "ROC AUC")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # average ranks (1-based) over ties
    starts = np.r_[0, np.flatnonzero(sorted_s[1:] != sorted_s[:-1]) + 1]
    ends = np.r_[starts[1:], s.size]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def far_frr_at_threshold(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """(FAR, FRR) when pairs with ``score >= threshold`` are accepted."""
    s, y = _as_arrays(scores, labels)
    _need_both_classes(y, "FAR/FRR")
    accepted = s >= threshold
    far = float(accepted[~y].mean())
    frr = float((~accepted[y]).mean())
    return far, frr


def threshold_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """The lowest threshold whose FAR is at most ``far`` (computed on the impostor scores).

    With n impostors, at most k = floor(far * n) may be accepted: the threshold is just above the
    (k+1)-th highest impostor score (``np.nextafter``), so that score and all below it are rejected.
    """
    s, y = _as_arrays(scores, labels)
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"target FAR {far} is not in [0, 1]")
    impostors = np.sort(s[~y])[::-1]
    if impostors.size == 0:
        raise ValueError("threshold at FAR needs impostor pairs")
    k = int(np.floor(far * impostors.size + 1e-9))
    if k >= impostors.size:
        return float(impostors[-1]) if np.isfinite(impostors[-1]) else -np.inf
    return float(np.nextafter(impostors[k], np.inf))


def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """True accept rate at the threshold ``threshold_at_far(scores, labels, far)``."""
    s, y = _as_arrays(scores, labels)
    _need_both_classes(y, "TAR at FAR")
    t = threshold_at_far(s, y, far)
    return float((s[y] >= t).mean())


def eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Equal error rate and the threshold where it is reached, as (eer, threshold).

    On the ROC points (FAR rising, FRR falling as the threshold falls) the first point with
    FAR >= FRR and its predecessor bracket the crossing; the EER is where the straight segments
    between them cross, and the threshold is that point's (the lower of the two bracketing thresholds).
    """
    curve = roc_curve(scores, labels)
    far, frr = curve.far, curve.frr
    diff = far - frr                       # -1 at the start, rises to +1 (or 0 at the end)
    i = int(np.argmax(diff >= 0))
    if i == 0:
        return float(far[0]), float(curve.thresholds[0])
    d0, d1 = diff[i - 1], diff[i]
    t = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    value = far[i - 1] + t * (far[i] - far[i - 1])
    return float(value), float(curve.thresholds[i])


def accuracy_at_threshold(scores: np.ndarray, labels: np.ndarray, threshold: float,
                          valid: np.ndarray | None = None) -> float:
    """Fraction of correct same/different answers at ``threshold``; failed pairs count as wrong."""
    s, y = _as_arrays(scores, labels)
    if s.size == 0:
        raise ValueError("accuracy of an empty pair set")
    v = _valid_mask(valid, s.size)
    correct = ((s >= threshold) == y) & v
    return float(correct.mean())


def best_threshold(scores: np.ndarray, labels: np.ndarray, valid: np.ndarray | None = None) -> tuple[float, float]:
    """The threshold with the highest accuracy on these pairs, as (threshold, accuracy).

    Candidates are the midpoints between consecutive distinct (finite, valid) scores, plus one below
    the lowest and one above the highest; among equally good candidates the lowest wins. The accuracy
    returned counts failed pairs as wrong.
    """
    s, y = _as_arrays(scores, labels)
    v = _valid_mask(valid, s.size)
    keep = v & np.isfinite(s)
    if not keep.any():
        return 0.0, accuracy_at_threshold(s, y, 0.0, v)
    u = np.unique(s[keep])
    candidates = np.r_[u[0] - 1.0, (u[:-1] + u[1:]) / 2.0, u[-1] + 1.0]
    sk, yk = s[keep], y[keep]
    order = np.argsort(sk, kind="mergesort")
    sk, yk = sk[order], yk[order]
    # for each candidate t: genuine accepted = genuine with s >= t, impostors rejected = impostors with s < t
    below = np.searchsorted(sk, candidates, side="left")          # pairs with s < t
    gen_below = np.r_[0, np.cumsum(yk)][below]
    imp_below = below - gen_below
    correct = (int(yk.sum()) - gen_below) + imp_below
    j = int(np.argmax(correct))
    threshold = float(candidates[j])
    return threshold, accuracy_at_threshold(s, y, threshold, v)


@dataclass(frozen=True)
class KFoldResult:
    """Per-fold accuracies and the thresholds chosen on the other folds."""

    accuracies: np.ndarray
    thresholds: np.ndarray
    fold_ids: np.ndarray
    optimistic: bool = False      # True when there was one fold: its threshold was tuned on itself
    extra: dict = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        """Population standard deviation over folds (ddof=0, as insightface and the CFP paper report)."""
        return float(np.std(self.accuracies))


def default_folds(n: int, k: int = 10) -> np.ndarray:
    """Fold ids 0..k-1 for n pairs in k contiguous blocks (the LFW file order), like KFold(shuffle=False)."""
    if n <= 0:
        raise ValueError("no pairs to split into folds")
    k = max(1, min(k, n))
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    return np.repeat(np.arange(k), sizes)


def kfold_accuracy(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray | None = None, k: int = 10,
                   valid: np.ndarray | None = None) -> KFoldResult:
    """k-fold verification accuracy: each fold is scored at the best threshold of the other folds.

    ``folds`` gives each pair's fold id (e.g. CFP's official ten); when None, ``default_folds(n, k)``.
    With a single fold there is nothing else to tune on, so its threshold is tuned on itself and the
    result is marked ``optimistic`` (an upper bound, not a fair estimate). Failed pairs (``valid`` False)
    count as wrong answers.
    """
    s, y = _as_arrays(scores, labels)
    v = _valid_mask(valid, s.size)
    f = default_folds(s.size, k) if folds is None else np.asarray(folds).reshape(-1)
    if f.size != s.size:
        raise ValueError(f"folds ({f.size}) and scores ({s.size}) differ in length")
    ids = np.unique(f)
    accuracies, thresholds = [], []
    for fold in ids:
        test = f == fold
        train = ~test if ids.size > 1 else test
        t, _ = best_threshold(s[train], y[train], v[train])
        thresholds.append(t)
        accuracies.append(accuracy_at_threshold(s[test], y[test], t, v[test]))
    return KFoldResult(np.asarray(accuracies), np.asarray(thresholds), ids, optimistic=ids.size == 1)
