"""The pipeline bench stages run on real photos and a built 640x480 video (numbers not asserted)."""

from __future__ import annotations

from pathlib import Path

import torch

from faceapp.bench.framework import BenchContext, run_bench
from faceapp.bench.stages_pipeline import N_PHOTOS, photo_paths, video_frames
from faceapp.core.progress import run_to_completion


PIPELINE_STAGES = ["decode", "detect-image", "detect-video", "detect-video-1", "align", "embed-b1", "embed-b32",
                   "embed-b1-cuda", "embed-b32-cuda", "pipeline-video"]


def test_every_stage_produces_a_result(celeba: Path, mediapipe_models: Path) -> None:
    ctx = BenchContext(options={"images_dir": celeba / "07201"})
    try:
        report = run_to_completion(run_bench(PIPELINE_STAGES, repeat=2, warmup=0, context=ctx))
        assert 0 < len(photo_paths(ctx)) <= N_PHOTOS
        frames = video_frames(ctx)
        assert len(frames) == 90 and frames[0].shape == (480, 640, 3)
    finally:
        ctx.close()
    by_name = {s.name: s for s in report.stages}
    assert list(by_name) == PIPELINE_STAGES
    for name in ("decode", "detect-image", "detect-video", "detect-video-1", "align", "embed-b1", "embed-b32",
                 "pipeline-video"):
        stage = by_name[name]
        assert stage.error is None and stage.skipped is None, (name, stage.error, stage.skipped)
        assert stage.repeat == 2 and stage.median_ms > 0 and stage.p95_ms >= stage.median_ms
    assert by_name["embed-b32"].items == 32 and by_name["embed-b1"].target == "<= 5 ms/face"
    assert by_name["detect-image"].target == "<= 8 ms/image" and by_name["pipeline-video"].target == ">= 30 frames/s"
    assert "landmarker" in by_name["detect-image"].note
    cuda = by_name["embed-b1-cuda"]
    if torch.cuda.is_available():
        assert cuda.error is None and cuda.median_ms > 0
    else:
        assert cuda.skipped == "no CUDA device"


def test_missing_photo_folder_is_a_clear_stage_error(tmp_path: Path) -> None:
    report = run_to_completion(run_bench(["decode"], repeat=1, warmup=0, options={"images_dir": tmp_path / "nothing"}))
    assert "benchmark photos not found" in report.stages[0].error and "--images" in report.stages[0].error
