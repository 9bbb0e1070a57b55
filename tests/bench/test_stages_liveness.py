"""The liveness bench stages run on real photos and a real video, with the passive target reported."""

from __future__ import annotations

from pathlib import Path

from faceapp.bench.framework import BenchContext, run_bench
from faceapp.core.progress import run_to_completion


def test_liveness_stages_produce_results(celeba: Path, mediapipe_models: Path) -> None:
    ctx = BenchContext(options={"images_dir": celeba / "07201"})
    try:
        report = run_to_completion(run_bench(["liveness-passive", "liveness-challenge"], repeat=2, warmup=0,
                                             context=ctx))
    finally:
        ctx.close()
    by_name = {s.name: s for s in report.stages}
    for name in ("liveness-passive", "liveness-challenge"):
        stage = by_name[name]
        assert stage.error is None and stage.skipped is None, (name, stage.error, stage.skipped)
        assert stage.repeat == 2 and stage.median_ms > 0
    assert by_name["liveness-passive"].target == "<= 5 ms/face"
