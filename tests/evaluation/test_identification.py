"""Closed-set rank-k identification on hand-made embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.evaluation.identification import identification_report, rank_k_accuracy, split_gallery_probe


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_split_first_images_with_a_face() -> None:
    labels = ["a", "a", "a", "b", "b"]
    ok = np.array([False, True, True, True, True])
    gallery, probes = split_gallery_probe(labels, 1, ok)
    assert gallery.tolist() == [1, 3] and probes.tolist() == [0, 2, 4]


def test_rank_k_by_hand() -> None:
    gallery = np.stack([_unit([1, 0]), _unit([0, 1])])
    probes = np.stack([_unit([0.9, 0.1]), _unit([0.2, 0.8]), _unit([1, 0])])
    labels = ["A", "A", "B"]
    ok = np.array([True, True, False])      # the third probe had no face: a miss
    assert rank_k_accuracy(gallery, ["A", "B"], probes, labels, k=1, probe_ok=ok) == pytest.approx(1 / 3)
    assert rank_k_accuracy(gallery, ["A", "B"], probes, labels, k=2, probe_ok=ok) == pytest.approx(2 / 3)


def test_report_uses_best_template_per_identity() -> None:
    emb = np.stack([_unit([1, 0]), _unit([0, 1]), _unit([0.1, 1]), _unit([1, 0.1])])
    report = identification_report(emb, ["A", "B", "A", "B"], n_gallery=1)
    assert (report.n_gallery, report.n_probes) == (2, 2)
    assert report.rank1 == 0.0 and report.rank5 == 1.0
    report2 = identification_report(np.stack([emb[0], emb[2], emb[1], emb[3], emb[0]]), ["A", "A", "B", "B", "A"], n_gallery=2)
    assert report2.n_probes == 1 and report2.rank1 == 1.0
