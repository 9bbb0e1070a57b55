"""The gallery's bench stages run through the bench framework and report what they timed."""

from __future__ import annotations

import torch

from faceapp.bench.framework import run_bench, stage_names
from faceapp.core.progress import run_to_completion
from faceapp.embedding.model_folder import ModelConfig, save_model
from faceapp.nn.backbones import create_backbone


def test_identify_and_enrolment_stages_run(mediapipe_models, att, tmp_path) -> None:
    torch.manual_seed(0)
    config = ModelConfig(name="bench-tiny", backbone="tiny", embedding_dim=32)
    model_dir = save_model(tmp_path / "bench-tiny", create_backbone("tiny", embedding_dim=32).eval(), config,
                           {"trained": False})
    names = stage_names()
    for stage in ("identify-1k", "identify-10k", "identify-100k", "identify-1m", "enroll-throughput",
                  "enroll-transaction"):
        assert stage in names
    report = run_to_completion(run_bench(["identify-1k", "enroll-transaction"], repeat=2, warmup=0,
                                         options={"mediapipe_dir": mediapipe_models, "att_dir": att,
                                                  "model_dir": model_dir}))
    identify, transaction = report.stages
    assert identify.error is None and identify.skipped is None and identify.repeat == 2
    assert identify.unit == "query" and "1,000 x 128" in identify.note and identify.median_ms > 0
    assert transaction.error is None and transaction.unit == "identity" and "5 crops" in transaction.note
