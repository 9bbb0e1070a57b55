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
