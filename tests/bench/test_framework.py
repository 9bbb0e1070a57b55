"""The bench framework: registration, warm-up and repeat counts, statistics, skips and errors."""

from __future__ import annotations

import pytest

from faceapp.bench.framework import (BENCH_STAGES, BenchContext, StageSkipped, Target, Timed, bench_stage, run_bench,
                                     stage_names, summarise, time_calls)
from faceapp.core.errors import DatasetError
from faceapp.core.progress import CancelToken, Progress, run_to_completion

CALLS: list[int] = []
NOW = [0.0]                        # a simulated clock (seconds): calls advance it, nothing reads the wall clock


def _clock() -> float:
    return NOW[0]


def _register_test_stages() -> None:
    if "test-count" in BENCH_STAGES:
        return

    @bench_stage("test-count", summary="counts its calls", order=1000, default=False)
    def _count(ctx: BenchContext) -> Timed:
        CALLS.clear()
        ctx.shared("closable", Closable)
        return Timed(lambda: CALLS.append(1), items=4, unit="face", target=Target(max_ms=1e6))

    @bench_stage("test-faster", summary="gets faster every round", order=1003, default=False)
    def _faster(ctx: BenchContext) -> Timed:
        CALLS.clear()

        def call() -> None:                # 1 warm-up, then rounds of 4 calls: 6, 4, 2 simulated ms per call
            CALLS.append(1)
            NOW[0] += 0.006 - 0.002 * ((len(CALLS) - 2) // 4) if len(CALLS) > 1 else 0.0

        return Timed(call, items=1, unit="call", target=Target(max_ms=1e6))

    @bench_stage("test-skip", summary="never runs here", order=1001, default=False)
    def _skip(ctx: BenchContext) -> Timed:
        raise StageSkipped("needs a quantum computer")

    @bench_stage("test-error", summary="fails like a missing dataset", order=1002, default=False)
    def _error(ctx: BenchContext) -> Timed:
        raise DatasetError("no photos here")


class Closable:
    closed = 0

    def close(self) -> None:
        Closable.closed += 1


def test_stages_are_discovered_in_report_order() -> None:
    _register_test_stages()
    names = stage_names()
    for expected in ("decode", "detect-image", "detect-video", "align", "embed-b1", "embed-b32", "pipeline-video"):
        assert expected in names
    assert names.index("decode") < names.index("detect-image") < names.index("embed-b1") < names.index("pipeline-video")
    assert "test-count" not in stage_names(only_default=True)


def test_runner_counts_calls_reports_skips_and_errors_and_closes_resources() -> None:
    _register_test_stages()
    events: list[Progress] = []
    before = Closable.closed
    report = run_to_completion(run_bench(["test-error", "test-count", "test-skip"], repeat=7, warmup=2), events.append)
    by_name = {s.name: s for s in report.stages}
    assert [s.name for s in report.stages] == ["test-count", "test-skip", "test-error"]     # report order
    count = by_name["test-count"]
    assert len(CALLS) == 9 and count.repeat == 7 and count.items == 4 and count.unit == "face"
    assert count.per_item_ms == pytest.approx(count.median_ms / 4, rel=1e-3, abs=1e-4)
    assert count.target_met is True and count.target == "<= 1e+06 ms/face"
    assert by_name["test-skip"].skipped == "needs a quantum computer" and by_name["test-skip"].median_ms is None
    assert by_name["test-error"].error == "no photos here"
    assert Closable.closed == before + 1
    assert events[0].total == 3 and events[-1].done == 3
    assert set(report.environment) >= {"python", "cpu_count", "torch", "mediapipe", "opencv"}
    assert report.to_dict()["stages"][0]["name"] == "test-count"


def test_rounds_report_the_fastest_round() -> None:
    _register_test_stages()
    report = run_to_completion(run_bench(["test-count"], repeat=4, warmup=1, rounds=3))
    stage = report.stages[0]
    assert len(CALLS) == 1 + 3 * 4 and stage.rounds == 3 and stage.repeat == 4     # warmed up once, not per round
    faster = run_to_completion(run_bench(["test-faster"], repeat=4, warmup=1, rounds=3, clock=_clock)).stages[0]
    assert faster.median_ms == pytest.approx(2.0) and faster.min_ms == pytest.approx(2.0)   # the 2 ms round


def test_unknown_stage_and_bad_counts() -> None:
    with pytest.raises(KeyError, match="no-such-stage"):
        run_to_completion(run_bench(["no-such-stage"]))
    with pytest.raises(ValueError):
        run_to_completion(run_bench(["decode"], repeat=0))
    with pytest.raises(ValueError):
        run_to_completion(run_bench(["decode"], rounds=0))


def test_cancel_stops_before_the_next_stage() -> None:
    _register_test_stages()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Exception, match="cancelled"):
        run_to_completion(run_bench(["test-count"], cancel=token))


def test_statistics_on_known_times() -> None:
    result = summarise("x", "known", Timed(lambda: None, items=2, unit="frame", target=Target(min_per_s=30.0)),
                       [float(v) for v in range(100, 0, -1)])
    assert result.median_ms == 50.5 and result.p95_ms == pytest.approx(95.05) and result.min_ms == 1.0
    assert result.per_item_ms == 25.25 and result.per_second == pytest.approx(39.6, abs=0.01)
    assert result.target_met is True and result.target == ">= 30 frames/s"
    assert Target(max_ms=5.0).met(5.0) and not Target(max_ms=5.0).met(5.1)
    assert not Target(min_per_s=30.0).met(40.0)


def test_time_cap_stops_a_slow_stage_early() -> None:
    def slow() -> None:                # 30 simulated ms per call: the 0.1 s cap is passed on the 4th call
        NOW[0] += 0.03

    times = time_calls(slow, repeat=1000, warmup=0, max_seconds=0.1, clock=_clock)
    assert len(times) == 4 and times == pytest.approx([30.0] * 4)
