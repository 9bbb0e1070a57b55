"""The live-view bench stages run end to end (functional check only: no timing assertions)."""

from __future__ import annotations

from faceapp.bench.framework import run_bench
from faceapp.core.progress import run_to_completion


def test_live_headless_and_gui_stages_report_per_stage_figures(qapp, mediapipe_models):
    report = run_to_completion(run_bench(["live-headless", "live-gui"], repeat=4, warmup=1,
                                         options={"mediapipe_dir": mediapipe_models}, max_seconds=None))
    stages = {s.name: s for s in report.stages}
    for name in ("live-headless", "live-gui"):
        stage = stages[name]
        assert stage.error is None and stage.skipped is None, stage
        assert stage.repeat == 4 and stage.unit == "frame" and stage.per_second > 0
        assert "detect" in stage.note and "embed" in stage.note and "match" in stage.note
    assert "display" in stages["live-gui"].note


def test_the_live_loop_with_liveness_on_reports_what_liveness_costs(qapp, mediapipe_models):
    report = run_to_completion(run_bench(["live-headless-liveness"], repeat=12, warmup=1,
                                         options={"mediapipe_dir": mediapipe_models}, max_seconds=None))
    stage = report.stages[0]
    assert stage.error is None and stage.skipped is None, stage
    assert stage.per_second > 0 and "liveness" in stage.note and "liveness mean" in stage.note
