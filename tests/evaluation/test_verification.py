"""Pair scoring from embeddings and the report's failure accounting."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.evaluation.verification import pair_scores, verification_report


def test_pair_scores_marks_failed_images() -> None:
    emb = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    scores, valid = pair_scores(emb, np.array([[0, 2], [1, 2], [0, 1]]), np.array([True, False, True]))
    assert scores[0] == pytest.approx(0.6) and valid.tolist() == [True, False, False]


def test_report_counts_failures_as_errors() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    same = np.array([1, 1, 0, 1, 0, 1, 0, 0], dtype=bool)
    folds = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    clean = verification_report(scores, same, folds=folds, protocol="toy", n_images=16)
    assert clean.accuracy == pytest.approx(0.5) and clean.auc == pytest.approx(13 / 16)
    assert clean.eer == pytest.approx(0.25) and clean.n_failed_pairs == 0
    valid = np.ones(8, dtype=bool)
    valid[0] = False
    failed = verification_report(scores, same, folds=folds, valid=valid, n_images=16, n_failed_images=1)
    assert failed.n_failed_pairs == 1 and failed.accuracy == pytest.approx(0.375)
    assert failed.auc < clean.auc                         # the failed genuine pair now ranks last
    assert "1 failed pairs (counted as errors" in failed.summary()
    assert set(failed.to_dict()["tar_at_far"]) == {"0.01", "0.001"}


def test_reject_policy_answers_failed_pairs_different() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    same = np.array([1, 1, 0, 1, 0, 1, 0, 0], dtype=bool)
    folds = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    valid = np.ones(8, dtype=bool)
    valid[[0, 2]] = False                 # a genuine and an impostor pair of fold 1 failed
    wrong = verification_report(scores, same, folds=folds, valid=valid, failure_policy="wrong")
    reject = verification_report(scores, same, folds=folds, valid=valid, failure_policy="reject")
    # wrong: fold 1 at .35 -> 2/4, fold 2 at -0.4 -> 1/4 ; reject: the failed impostor is now right -> 3/4, 1/4
    assert wrong.fold_accuracies == pytest.approx([0.5, 0.25]) and wrong.accuracy == pytest.approx(0.375)
    assert reject.fold_accuracies == pytest.approx([0.75, 0.25]) and reject.accuracy == pytest.approx(0.5)
    assert reject.n_failed_pairs == wrong.n_failed_pairs == 2
    assert "answered different" in reject.summary()
