"""Enrolment throughput helper: runs the whole enrolment path on AT&T and reports its fields."""

from __future__ import annotations

from faceapp.services.gallery_bench import enroll_throughput


def test_enroll_throughput_reports_the_run(att, tiny_embedder, pipeline) -> None:
    result = enroll_throughput(att, tiny_embedder, pipeline, identities=2, images_per_identity=3)
    assert (result["identities"], result["images"]) == (2, 6) and result["accepted"] == 6
    assert result["images_per_s"] > 0 and result["transaction_ms_median"] > 0
    assert result["model_id"] == tiny_embedder.model_id
