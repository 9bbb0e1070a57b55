"""Threshold calibration service: score sources on real faces, read-outs through evaluation.metrics,
thresholds at a target FAR/FPIR, and thresholds saved to the store where the gallery service reads them."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from faceapp.core.errors import CancelledError, DatasetError
from faceapp.core.progress import CancelToken, run_to_completion
from faceapp.embedding import Embedder
from faceapp.evaluation import metrics
from faceapp.services import thresholds as T
from faceapp.services.gallery import Gallery, model_spec
from faceapp.data import evaluate_protocol
from faceapp.evaluation.protocols import read_protocol
from tests.services.analyst_data import att_lfw_pairs, enrol_att


def _hand_scores(emb: np.ndarray, labels: np.ndarray) -> tuple[list[float], list[bool], np.ndarray]:
    scores, same = [], []
    for i, j in combinations(range(len(labels)), 2):
        scores.append(float(emb[i] @ emb[j]))
        same.append(bool(labels[i] == labels[j]))
    best = np.array([max(float(emb[i] @ emb[j]) for j in range(len(labels)) if labels[j] != labels[i])
                     for i in range(len(labels))])
    return scores, same, best


def test_labelled_scores_match_a_hand_count() -> None:
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(23, 5)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = np.array([0] * 6 + [1] * 9 + [2] * 8)
    scores, same, best = run_to_completion(T.labelled_scores(emb, labels))
    hand_scores, hand_same, hand_best = _hand_scores(emb, labels)
    assert same.sum() == sum(hand_same) == 15 + 36 + 28
    assert sorted(np.round(scores[same], 5)) == sorted(np.round(np.array(hand_scores)[hand_same], 5))
    assert sorted(np.round(scores[~same], 5)) == sorted(np.round(np.array(hand_scores)[~np.array(hand_same)], 5))
    assert np.allclose(best, hand_best, atol=1e-6)
    # beyond the limit: every genuine pair, and the asked number of impostor pairs drawn among the real ones
    scores_s, same_s, best_s = run_to_completion(T.labelled_scores(emb, labels, max_impostor_pairs=60))
    assert same_s.sum() == 79 and (~same_s).sum() == 60
    impostor_values = np.round(np.array(hand_scores)[~np.array(hand_same)], 5)
    assert set(np.round(scores_s[~same_s], 5)) <= set(impostor_values)
    assert np.allclose(best_s, hand_best, atol=1e-6)          # the best impostor is always exact


def test_fpir_model_and_its_inverse() -> None:
    assert T.expected_fpir(0.0, 1000) == 0.0
    assert T.expected_fpir(1e-3, 1) == pytest.approx(1e-3)
    assert T.expected_fpir(1e-3, 1000) == pytest.approx(1 - 0.999 ** 1000)          # 0.632
    assert T.expected_fpir(0.5, 0) == 0.0
    far = T.far_for_fpir(0.01, 500)
    assert T.expected_fpir(far, 500) == pytest.approx(0.01, rel=1e-9)
    with pytest.raises(ValueError, match="FPIR"):
        T.far_for_fpir(1.0, 10)


def test_gallery_leave_one_out_readouts_and_saved_thresholds(store, tiny_embedder: Embedder, att: Path) -> None:
    counts = enrol_att(store, tiny_embedder, att, range(1, 7), per_subject=4)
    job = T.gallery_scores(store, tiny_embedder.model_id, tiny_embedder.dim)
    scores = run_to_completion(job)
    assert scores.kind == "gallery" and scores.n_identities == 6 and scores.search_size == 5
    assert scores.n_genuine == 6 * 6 and scores.n_impostor == (24 * 23) // 2 - 36
    assert scores.probe_best_impostor is not None and scores.probe_best_impostor.size == sum(counts.values())
    assert T.searchable_identities(store, tiny_embedder.model_id) == 6

    t = float(np.median(scores.scores))
    point = T.operating_point(scores, t, gallery_size=6)
    assert (point.far, point.frr) == metrics.far_frr_at_threshold(scores.scores, scores.same, t)
    assert point.fpir_expected == pytest.approx(1 - (1 - point.far) ** 6)
    assert point.fpir_empirical == pytest.approx(float((scores.probe_best_impostor >= t).mean()))

    threshold = T.threshold_for_far(scores, 0.05)
    assert metrics.far_frr_at_threshold(scores.scores, scores.same, threshold)[0] <= 0.05
    impostors = np.sort(scores.scores[~scores.same])
    below = impostors[impostors < threshold].max()
    assert metrics.far_frr_at_threshold(scores.scores, scores.same, below)[0] > 0.05   # the lowest such threshold

    identify, how = T.threshold_for_fpir(scores, 0.1, 6)                  # leave-one-out searched N - 1 = 5
    assert "measured" in how and float((scores.probe_best_impostor >= identify).mean()) <= 0.1
    modelled, how = T.threshold_for_fpir(scores, 0.1, 500)          # larger than the searched gallery
    assert "1-(1-FAR)^N" in how and modelled >= identify

    curves = T.compute_curves(scores)
    assert curves.eer == pytest.approx(metrics.eer(scores.scores, scores.same)[0])
    width = np.diff(curves.bin_edges)[0]
    assert curves.genuine_density.sum() * width == pytest.approx(1.0)
    assert curves.impostor_density.sum() * width == pytest.approx(1.0)

    record = T.save_thresholds(store, model_spec(tiny_embedder), verify=threshold, identify=identify,
                               target_far=0.05, source=f"{scores.describe()}, FAR 0.05")
    assert record.source.startswith("gallery leave-one-out") and record.calibrated_at is not None
    used = Gallery(store, model_spec(tiny_embedder), tiny_embedder.card).thresholds()   # what live decisions use
    assert (used.verify, used.identify, used.target_far) == (pytest.approx(threshold), pytest.approx(identify), 0.05)
    assert used.source == f"store:{record.source}"


def test_gallery_without_templates_is_refused(store, tiny_embedder: Embedder) -> None:
    with pytest.raises(DatasetError, match="0 template"):
        run_to_completion(T.gallery_scores(store, tiny_embedder.model_id, tiny_embedder.dim))


def test_protocol_scores_are_faceapp_eval_scores(att: Path, tmp_path: Path, tiny_embedder: Embedder,
                                                 mediapipe_models: Path) -> None:
    pairs, root = att_lfw_pairs(att, tmp_path)
    scores = run_to_completion(T.protocol_scores(tiny_embedder, "lfw", pairs, root))
    report = run_to_completion(evaluate_protocol(tiny_embedder, read_protocol("lfw", pairs, root)))
    assert scores.kind == "pairs" and scores.n_genuine == 40 and scores.n_impostor == 40
    curves = T.compute_curves(scores)
    assert curves.eer == report.eer and curves.eer_threshold == report.eer_threshold and curves.auc == report.auc
    for far, tar in report.tar_at_far.items():
        t = T.threshold_for_far(scores, float(far))
        assert 1.0 - T.operating_point(scores, t).frr == tar
    assert scores.report["accuracy"] == report.accuracy


def test_folder_scores_leave_out_faceless_images_and_cancel(att: Path, tiny_embedder: Embedder,
                                                            mediapipe_models: Path) -> None:
    scores = run_to_completion(T.folder_scores(tiny_embedder, att, identities="s1-s3", max_per_identity=4))
    ok = scores.n_images - scores.n_failed_images
    assert scores.n_identities == 3 and scores.n_genuine + scores.n_impostor == ok * (ok - 1) // 2
    assert "labelled folder" in scores.describe()
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(CancelledError):
        run_to_completion(T.folder_scores(tiny_embedder, att, identities="s1-s3", max_per_identity=4, cancel=cancel))
