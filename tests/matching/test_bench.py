"""The gallery benchmark helpers build what they say and report sane fields (no timing assertions)."""

from __future__ import annotations

import numpy as np

from faceapp.matching.bench import SCALES, synthetic_index, time_identify


def test_synthetic_index_and_identify_timing_fields() -> None:
    index = synthetic_index(2_500, 16, per_identity=5, chunk=1_000)
    assert len(index) == 2_500 and index.identity_count == 500
    assert np.allclose(np.linalg.norm(index.matrix, axis=1), 1.0, atol=1e-5)
    result = time_identify(1_000, 16, repeats=5, warmup=1)
    assert (result["templates"], result["identities"], result["dim"], result["product"]) == (1_000, 200, 16, "einsum")
    assert 0.0 < result["median_ms"] <= result["p95_ms"]
    assert SCALES["identify-1m"] == 1_000_000
