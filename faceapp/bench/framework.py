"""The ``faceapp bench`` framework: named stages, timed the same way, reported together.

A stage is a setup function registered with ``@bench_stage("name")``. It receives the ``BenchContext``
(shared, lazily built resources: photos, pipelines, embedders, a test video) and returns a ``Timed``:
a zero-argument callable that does one unit of work, how many items one call handles, and optionally
a target. The runner calls it ``warmup`` times untimed, then ``repeat`` times under
``time.perf_counter`` and reports median and p95 (and the per-item time and rate derived from the
median). A stage that cannot run here (no CUDA, no trained model...) raises ``StageSkipped``.

Stages live in modules ``faceapp/bench/stages_*.py``, imported on demand, so later work adds a stage by
adding a module (e.g. ``stages_identify.py``) without touching the runner or the CLI.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from faceapp.core.errors import FaceAppError
from faceapp.core.progress import CancelToken, Job, Progress
from faceapp.core.registry import Registry, import_submodules


class StageSkipped(Exception):
    """Raised by a stage's setup when it cannot run on this machine; the message says why."""


@dataclass(frozen=True)
class Target:
    """A performance goal: ``max_ms`` per item, or ``min_per_s`` items per second."""

    max_ms: float | None = None
    min_per_s: float | None = None

    def met(self, per_item_ms: float) -> bool:
        if self.max_ms is not None and per_item_ms > self.max_ms:
            return False
        if self.min_per_s is not None and 1000.0 / per_item_ms < self.min_per_s:
            return False
        return True

    def describe(self, unit: str) -> str:
        if self.max_ms is not None:
            return f"<= {self.max_ms:g} ms/{unit}"
        return f">= {self.min_per_s:g} {unit}s/s"


@dataclass
class Timed:
    """What a stage's setup returns: the work to time and how to read the numbers."""

    call: Callable[[], Any]
    items: int = 1                       # items handled by one call (e.g. the batch size)
    unit: str = "image"                  # what an item is: image, face, frame
    target: Target | None = None
    note: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)   # stage-specific numbers (build s, recall...)


@dataclass
class StageResult:
    """Timing of one stage (milliseconds); ``skipped`` or ``error`` set instead when it did not run."""

    name: str
    summary: str
    unit: str = ""
    items: int = 1
    repeat: int = 0                      # timed calls in the reported round
    rounds: int = 1
    median_ms: float | None = None       # per call
    p95_ms: float | None = None
    mean_ms: float | None = None
    min_ms: float | None = None
    per_item_ms: float | None = None     # median / items
    per_second: float | None = None      # items per second at the median
    target: str | None = None
    target_met: bool | None = None
    note: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BenchReport:
    """All stage results plus what they were measured on."""

    stages: list[StageResult]
    environment: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "stages": [s.to_dict() for s in self.stages]}


StageSetup = Callable[["BenchContext"], Timed]
BENCH_STAGES: Registry[StageSetup] = Registry("bench stage")
_ORDER: dict[str, float] = {}
_DEFAULT: dict[str, bool] = {}


def bench_stage(name: str, *, summary: str | None = None, order: float = 100.0,
                default: bool = True) -> Callable[[StageSetup], StageSetup]:
    """Register a stage setup under ``name``; ``order`` sorts the report, ``default`` runs it without --stages."""

    def decorate(setup: StageSetup) -> StageSetup:
        BENCH_STAGES.register(name, summary=summary)(setup)
        _ORDER[name] = order
        _DEFAULT[name] = default
        return setup

    return decorate


def load_stage_modules() -> None:
    """Import every ``faceapp.bench.stages_*`` module (each registers its stages once)."""
    import_submodules("faceapp.bench", prefix="stages_")


def stage_names(*, only_default: bool = False) -> list[str]:
    """Registered stage names in report order."""
    load_stage_modules()
    names = [n for n in BENCH_STAGES.names() if not only_default or _DEFAULT.get(n, True)]
    return sorted(names, key=lambda n: (_ORDER.get(n, 100.0), n))


class BenchContext:
    """Resources shared by the stages of one run, built on first use and closed at the end."""

    def __init__(self, *, repeat: int = 50, warmup: int = 5, work_dir: Path | None = None,
                 options: dict[str, Any] | None = None) -> None:
        self.repeat = repeat
        self.warmup = warmup
        self.options: dict[str, Any] = dict(options or {})   # e.g. images_dir, mediapipe_dir, model_dir
        self._cache: dict[str, Any] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._work_dir = work_dir

    @property
    def work_dir(self) -> Path:
        """A temporary folder for files the stages build (removed at the end of the run)."""
        if self._work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="faceapp-bench-")
            self._work_dir = Path(self._tmp.name)
        return self._work_dir

    def shared(self, key: str, factory: Callable[[], Any]) -> Any:
        """The resource ``key``, built by ``factory`` the first time; closed (``.close()``) at the end."""
        if key not in self._cache:
            self._cache[key] = factory()
        return self._cache[key]

    def close(self) -> None:
        """Close every resource that has a ``close`` method, then remove the work folder."""
        for value in reversed(list(self._cache.values())):
            closer = getattr(value, "close", None)
            if callable(closer):
                try:
                    closer()
                except Exception:  # noqa: BLE001 - cleanup must not hide results
                    pass
        self._cache.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of sorted values (q in 0..100)."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def time_calls(call: Callable[[], Any], repeat: int, warmup: int, max_seconds: float | None = None,
               clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Milliseconds of ``repeat`` calls after ``warmup`` untimed ones; with ``max_seconds``, stops early
    once that much time went into the timed calls and at least 3 were made (slow stages, loaded machines).
    ``clock`` (seconds) is injectable so tests count simulated time instead of reading the wall clock."""
    for _ in range(warmup):
        call()
    times: list[float] = []
    spent = 0.0
    for _ in range(repeat):
        start = clock()
        call()
        elapsed = clock() - start
        times.append(elapsed * 1000.0)
        spent += elapsed
        if max_seconds is not None and spent > max_seconds and len(times) >= 3:
            break
    return times


def summarise(name: str, summary: str, timed: Timed, times: list[float]) -> StageResult:
    """A StageResult from raw call times."""
    ordered = sorted(times)
    median = statistics.median(ordered)
    per_item = median / max(1, timed.items)
    result = StageResult(name=name, summary=summary, unit=timed.unit, items=timed.items, repeat=len(times),
                         median_ms=round(median, 4), p95_ms=round(_percentile(ordered, 95.0), 4),
                         mean_ms=round(statistics.fmean(ordered), 4), min_ms=round(ordered[0], 4),
                         per_item_ms=round(per_item, 4), per_second=round(1000.0 / per_item, 2) if per_item > 0 else None,
                         note=timed.note, metrics=dict(timed.metrics))
    if timed.target is not None:
        result.target = timed.target.describe(timed.unit)
        result.target_met = timed.target.met(per_item)
    return result


def environment() -> dict[str, Any]:
    """Machine and library versions the numbers were measured with."""
    info: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(),
                            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                            "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        import cv2
        import mediapipe
        import torch

        from faceapp.embedding.speed import loadavg

        # other work on the machine inflates every number: keep the load next to the results
        info["load_average_1m"] = loadavg()
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads(), opencv=cv2.__version__,
                    mediapipe=mediapipe.__version__, cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info


def run_bench(names: Sequence[str] | None = None, *, repeat: int = 50, warmup: int = 5,
              cancel: CancelToken | None = None, context: BenchContext | None = None,
              options: dict[str, Any] | None = None, max_seconds: float | None = 20.0,
              rounds: int = 1, clock: Callable[[], float] = time.perf_counter) -> Job[BenchReport]:
    """Time the named stages (default: every default stage) in report order; yields Progress per stage.

    ``max_seconds`` caps the timed calls of one round of a stage (``StageResult.repeat`` says how many
    ran). With ``rounds`` > 1 each stage is timed that many times and the round with the lowest median
    is reported: on a machine shared with other jobs that is the closest to the stage's own cost.
    ``clock`` times the calls (``time.perf_counter``; tests inject a simulated one).
    A stage that fails with a FaceAppError or StageSkipped is reported as such; the others still run.
    """
    if repeat < 1 or warmup < 0 or rounds < 1:
        raise ValueError("repeat and rounds must be >= 1 and warmup >= 0")
    cancel = cancel or CancelToken()
    known = stage_names()
    wanted = list(names) if names else stage_names(only_default=True)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise KeyError(f"unknown bench stage(s) {', '.join(unknown)}; known: {', '.join(known)}")
    wanted = sorted(dict.fromkeys(wanted), key=known.index)
    ctx = context or BenchContext(repeat=repeat, warmup=warmup, options=options)
    results: list[StageResult] = []
    try:
        for i, name in enumerate(wanted):
            cancel.raise_if_cancelled("benchmark")
            entry = BENCH_STAGES.get(name)
            yield Progress("bench", i, len(wanted), message=name)
            try:
                timed = entry.factory(ctx)
                best: StageResult | None = None
                for round_number in range(rounds):
                    cancel.raise_if_cancelled("benchmark")
                    warm = warmup if round_number == 0 else 0                 # warm up once, not every round
                    calls = time_calls(timed.call, repeat, warm, max_seconds, clock)
                    result = summarise(name, entry.summary, timed, calls)
                    if best is None or (result.median_ms or 0.0) < (best.median_ms or 0.0):
                        best = result
                assert best is not None
                best.rounds = rounds
                results.append(best)
            except StageSkipped as skip:
                results.append(StageResult(name=name, summary=entry.summary, skipped=str(skip)))
            except FaceAppError as error:
                results.append(StageResult(name=name, summary=entry.summary, error=str(error)))
        yield Progress("bench", len(wanted), len(wanted), message="done")
    finally:
        if context is None:
            ctx.close()
    return BenchReport(stages=results, environment=environment())
