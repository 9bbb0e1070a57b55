"""The gallery benchmark helpers (faceapp.bench.gallery) build what they say and report sane fields (no timing
assertions): synthetic identification at scale, and the whole enrolment path on AT&T."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceapp.bench.gallery import SCALES, enroll_throughput, synthetic_index, time_identify
from faceapp.embedding import Embedder
from faceapp.vision.pipeline import FacePipeline


def test_synthetic_index_and_identify_timing_fields() -> None:
    index = synthetic_index(2_500, 16, per_identity=5, chunk=1_000)
    assert len(index) == 2_500 and index.identity_count == 500
    assert np.allclose(np.linalg.norm(index.matrix, axis=1), 1.0, atol=1e-5)
    result = time_identify(1_000, 16, repeats=5, warmup=1)
    assert (result["templates"], result["identities"], result["dim"], result["product"]) == (1_000, 200, 16, "einsum")
    assert 0.0 < result["median_ms"] <= result["p95_ms"]
    assert SCALES["identify-1m"] == 1_000_000


def test_enroll_throughput_reports_the_run(att: Path, mediapipe_models: Path) -> None:
    embedder = Embedder.untrained(backbone="tiny", embedding_dim=32, device="cpu")
    with FacePipeline("image", model_dir=mediapipe_models) as pipeline:
        result = enroll_throughput(att, embedder, pipeline, identities=2, images_per_identity=3)
    assert (result["identities"], result["images"]) == (2, 6) and result["accepted"] == 6
    assert result["images_per_s"] > 0 and result["transaction_ms_median"] > 0
    assert result["model_id"] == embedder.model_id


def _known_distribution(identities: int = 300, per: int = 8, dim: int = 16, seed: int = 0):
    """Embeddings drawn around Gaussian identity centres with a known within/between spread."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((identities, dim)).astype(np.float32)
    labels = np.repeat(np.arange(identities), per)
    return centres[labels] + 0.4 * rng.standard_normal((labels.size, dim)).astype(np.float32), labels


def test_embedding_stats_reproduce_the_real_genuine_and_impostor_cosines() -> None:
    from faceapp.bench.gallery import embedding_stats
    from faceapp.matching import normalize_rows

    vectors, labels = _known_distribution()
    stats = embedding_stats(vectors, labels, model_id="m@1", source="test")
    assert (stats.identities, stats.images) == (300, 2400)
    real = normalize_rows(vectors)
    ids, identities, rows = next(stats.sample(3000, per_identity=5, chunk=3000))
    assert np.array_equal(ids, np.arange(3000)) and np.array_equal(identities, ids // 5)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)

    def genuine_impostor(matrix: np.ndarray, group: np.ndarray) -> tuple[float, float]:
        cos = matrix @ matrix.T
        same = group[:, None] == group[None, :]
        np.fill_diagonal(same, False)
        other = group[:, None] != group[None, :]
        return float(cos[same].mean()), float(cos[other].mean())

    real_g, real_i = genuine_impostor(real[:1200], labels[:1200])
    fake_g, fake_i = genuine_impostor(rows[:1200], identities[:1200])
    assert abs(fake_g - real_g) < 0.05 and abs(fake_i - real_i) < 0.05      # the same geometry, not noise
    assert np.array_equal(stats.centres(7, 9), stats.centres(0, 20)[7:9])    # centres are a function of the id


def test_ann_case_reports_recall_against_exact() -> None:
    from faceapp.bench.gallery import ann_case, embedding_stats

    vectors, labels = _known_distribution()
    stats = embedding_stats(vectors, labels, model_id="m@1", source="test")
    case = ann_case(stats, 5_000, kind="ivf", probes=50)
    metrics = case["metrics"]
    assert (metrics["templates"], metrics["identities"], metrics["kind"], metrics["probes"]) == (5_000, 1_000, "ivf", 50)
    assert 0.9 <= metrics["recall@1"] <= 1.0 and 0.0 < metrics["recall@5"] <= 1.0
    assert metrics["rows_mb"] > 0 and metrics["index_mb"] > 0 and case["index"].built
