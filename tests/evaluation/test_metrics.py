"""Metrics against numbers computed by hand on tiny synthetic score sets (worked out in the comments)."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.evaluation import metrics

# genuine: .9 .8 .6 .4 ; impostor: .7 .5 .3 .2
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
LABELS = np.array([1, 1, 0, 1, 0, 1, 0, 0], dtype=bool)
FOLDS = np.array([1, 1, 1, 1, 2, 2, 2, 2])


def test_roc_curve_points() -> None:
    curve = metrics.roc_curve(SCORES, LABELS)
    assert np.allclose(curve.far, [0, 0, 0, .25, .25, .5, .5, .75, 1])
    assert np.allclose(curve.tar, [0, .25, .5, .5, .75, .75, 1, 1, 1])
    assert curve.thresholds[0] == np.inf and np.allclose(curve.thresholds[1:], SCORES)


def test_roc_curve_groups_ties() -> None:
    curve = metrics.roc_curve([0.5, 0.5, 0.1], [True, False, False])
    assert np.allclose(curve.far, [0, 0.5, 1]) and np.allclose(curve.tar, [0, 1, 1])


def test_auc_counts_ordered_pairs() -> None:
    # genuine above impostor: .9 -> 4, .8 -> 4, .6 -> 3, .4 -> 2 ; 13 of 16
    assert metrics.roc_auc(SCORES, LABELS) == pytest.approx(13 / 16)
    # a tie counts one half
    assert metrics.roc_auc([0.5, 0.5], [True, False]) == pytest.approx(0.5)


def test_eer_exact_crossing() -> None:
    value, threshold = metrics.eer(SCORES, LABELS)
    assert value == pytest.approx(0.25) and threshold == pytest.approx(0.6)


def test_eer_interpolates_between_points() -> None:
    # g .9, i .8, g .7, g .6, i .5 : (FAR, FRR) goes (.5, 2/3) -> (.5, 1/3): crossing halfway at .5
    value, threshold = metrics.eer([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 1, 0])
    assert value == pytest.approx(0.5) and threshold == pytest.approx(0.7)


def test_far_frr_at_threshold() -> None:
    far, frr = metrics.far_frr_at_threshold(SCORES, LABELS, 0.55)   # accept .9 .8 .7 .6
    assert far == pytest.approx(0.25) and frr == pytest.approx(0.25)


def test_threshold_and_tar_at_far() -> None:
    t = metrics.threshold_at_far(SCORES, LABELS, 0.25)   # one false accept allowed: just above .5
    assert 0.5 < t < 0.5 + 1e-9
    assert metrics.far_frr_at_threshold(SCORES, LABELS, t)[0] <= 0.25
    assert metrics.tar_at_far(SCORES, LABELS, 0.25) == pytest.approx(0.75)
    assert metrics.tar_at_far(SCORES, LABELS, 0.0) == pytest.approx(0.5)    # just above .7
    assert metrics.tar_at_far(SCORES, LABELS, 0.2) == pytest.approx(0.5)    # floor(.2*4) = 0 allowed


def test_best_threshold_lowest_of_equals() -> None:
    # 6/8 correct at .35, .55 and .75: the lowest wins
    t, acc = metrics.best_threshold(SCORES, LABELS)
    assert t == pytest.approx(0.35) and acc == pytest.approx(0.75)


def test_kfold_accuracy_by_hand() -> None:
    # fold 1 tested at fold 2's best threshold .35 -> 3/4; fold 2 at fold 1's -0.4 -> 1/4
    result = metrics.kfold_accuracy(SCORES, LABELS, FOLDS)
    assert np.allclose(result.thresholds, [0.35, -0.4])
    assert np.allclose(result.accuracies, [0.75, 0.25])
    assert result.mean == pytest.approx(0.5) and result.std == pytest.approx(0.25)
    assert not result.optimistic


def test_kfold_failed_pair_counts_wrong() -> None:
    valid = np.ones(8, dtype=bool)
    valid[0] = False                      # genuine .9 of fold 1 had no face: now wrong
    result = metrics.kfold_accuracy(SCORES, LABELS, FOLDS, valid=valid)
    assert np.allclose(result.accuracies, [0.5, 0.25])


def test_single_fold_is_marked_optimistic() -> None:
    result = metrics.kfold_accuracy(SCORES, LABELS, np.ones(8, dtype=int))
    assert result.optimistic and result.mean == pytest.approx(0.75)


def test_default_folds_contiguous() -> None:
    assert metrics.default_folds(7, 3).tolist() == [0, 0, 0, 1, 1, 2, 2]


def test_failure_policies() -> None:
    valid = np.array([False, True, False, True, True, True, True, True])   # genuine .9 and impostor .7 failed
    wrong = metrics.apply_failure_policy(SCORES, LABELS, valid, "wrong")
    assert wrong[0] == -np.inf and wrong[2] == np.inf
    reject = metrics.apply_failure_policy(SCORES, LABELS, valid, "reject")
    assert reject[0] == -np.inf and reject[2] == -np.inf
    # with "wrong" the failed impostor is accepted at every threshold: FAR can never reach 0
    assert metrics.tar_at_far(wrong, LABELS, 0.0) == 0.0
    with pytest.raises(ValueError, match="failure policy"):
        metrics.apply_failure_policy(SCORES, LABELS, valid, "drop")


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="both genuine and impostor"):
        metrics.roc_auc([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="differ in length"):
        metrics.roc_curve([0.1], [True, False])


def test_infinite_scores_tie_like_equal_scores() -> None:
    # two failed impostors at +inf (policy "wrong") form one group: accepted together at the first threshold
    curve = metrics.roc_curve([np.inf, np.inf, 0.5, -np.inf], [False, False, True, True])
    assert np.allclose(curve.far, [0, 1, 1, 1]) and np.allclose(curve.tar, [0, 0, 0.5, 1])
    assert metrics.roc_auc([np.inf, np.inf, 0.5, -np.inf], [False, False, True, True]) == 0.0
