"""Measure backbones: inference latency, training throughput, multiply-adds and parameters.

Reusable by ``faceapp bench`` and by ``python -m faceapp.embedding.speed`` (which prints the table in
docs/models.md). Latency is the median (and p95) over ``repeat`` timed forward passes in eval mode under
``torch.inference_mode`` after ``warmup`` untimed ones, with the inference optimisations the Embedder
applies (BN folding, channels-last) unless switched off. With ``rounds`` > 1 the round with the lowest
median is reported: on a shared machine the other rounds mostly measure someone else's load. The
1-minute load average is recorded with each result. Nothing here asserts a timing: numbers depend on
the machine and on its load.

``clock="thread"`` measures instead the CPU time of the (single) computing thread, with torch limited
to one thread: robust when other processes share the cores (time-slicing does not count), it gives
the one-core cost of a face; wall-clock latency with two idle cores is lower (up to about half).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch
from torch import nn

from faceapp.nn.backbones import create_backbone, list_backbones, prepare_for_inference

R = TypeVar("R")


@dataclass
class SpeedResult:
    """Latency of one backbone at one batch size (milliseconds)."""

    backbone: str
    batch_size: int
    input_size: int
    threads: int
    device: str
    ms_per_batch: float           # median
    ms_per_batch_p95: float
    ms_per_face: float            # median / batch_size
    options: dict[str, Any] = field(default_factory=dict)
    loadavg: float | None = None  # 1-minute load average when the timing ended (None where unknown)
    clock: str = "wall"           # "wall": elapsed time; "thread": CPU time of the one computing thread

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Temporarily set torch's intra-op thread count (None: leave it); yields the count in force."""
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def param_count(net: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in net.parameters())


def count_macs(net: nn.Module, input_size: int = 112) -> int:
    """Multiply-adds of one forward pass on one face (FLOPs / 2), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = net.training
    net.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.zeros(1, 3, input_size, input_size))
    net.train(was_training)
    return int(counter.get_total_flops() // 2)


def loadavg() -> float | None:
    """The 1-minute load average (Unix), to judge whether a timing was disturbed by other processes."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


CLOCKS = ("wall", "thread")


def _cpu_jiffies() -> tuple[int, int] | None:
    """(total, busy) CPU ticks of the whole machine since boot, from /proc/stat (None off Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values), sum(values) - idle


def _own_ticks() -> float:
    t = os.times()
    return (t.user + t.system) * os.sysconf("SC_CLK_TCK")


def others_cpu_share(fn: Callable[[], R]) -> tuple[R, float | None]:
    """Run ``fn``; also return the share of the machine's CPU that OTHER processes used meanwhile (0..1)."""
    before, own0 = _cpu_jiffies(), _own_ticks()
    out = fn()
    after, own1 = _cpu_jiffies(), _own_ticks()
    if before is None or after is None or after[0] <= before[0]:
        return out, None
    others = (after[1] - before[1]) - (own1 - own0)
    return out, max(0.0, others / (after[0] - before[0]))


def run_when_quiet(fn: Callable[[], R], *, max_others: float = 0.15, timeout_s: float = 600.0,
                   poll_s: float = 2.0) -> tuple[R, float | None]:
    """Run ``fn`` while other processes leave the CPU (nearly) idle; rerun it when they disturbed it.

    For wall-clock timings on a shared machine: waits until the others use less than ``max_others`` of
    the CPU over ``poll_s``, runs ``fn``, and accepts the result if they stayed under it meanwhile.
    After ``timeout_s`` the least disturbed attempt (or a last unconditional run) is returned with its
    share, so the caller can report it. Off Linux it just runs ``fn`` (share None).
    """
    if _cpu_jiffies() is None:
        return fn(), None
    deadline = time.monotonic() + timeout_s
    best: tuple[R, float] | None = None
    while time.monotonic() < deadline:
        _, idle_share = others_cpu_share(lambda: time.sleep(poll_s))
        if idle_share is not None and idle_share >= max_others:
            continue
        out, share = others_cpu_share(fn)
        if share is None or share < max_others:
            return out, share
        if best is None or share < best[1]:
            best = (out, share)
    if best is not None:
        return best
    return others_cpu_share(fn)


def _clock(clock: str, threads: int | None, device: str) -> tuple[Any, int | None]:
    """The timer function for ``clock`` and the torch thread count to use with it."""
    if clock == "wall":
        return time.perf_counter, threads
    if clock == "thread":
        if device != "cpu":
            raise ValueError("clock='thread' measures CPU time: use it with device='cpu'")
        return time.thread_time, 1
    raise ValueError(f"clock must be one of {', '.join(CLOCKS)}, got {clock!r}")


def time_module(net: nn.Module, *, batch_size: int = 1, input_size: int = 112, warmup: int = 10,
                repeat: int = 50, rounds: int = 1, threads: int | None = None, channels_last: bool = True,
                device: str = "cpu", clock: str = "wall", name: str = "",
                options: dict[str, Any] | None = None) -> SpeedResult:
    """Time ``net`` (already prepared; see ``prepare_for_inference``) on random input of one batch size.

    ``rounds`` rounds of ``repeat`` timed passes; the round with the lowest median is reported.
    ``clock="thread"``: one torch thread, its CPU time (see the module docstring).
    """
    timer, threads = _clock(clock, threads, device)
    net.eval()
    x = torch.randn(batch_size, 3, input_size, input_size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    best: list[float] | None = None
    with torch_threads(threads) as used, torch.inference_mode():
        for _ in range(max(0, warmup)):
            net(x)
        _sync(device)
        for _ in range(max(1, rounds)):
            times: list[float] = []
            for _ in range(max(1, repeat)):
                t0 = timer()
                net(x)
                _sync(device)
                times.append((timer() - t0) * 1000.0)
            times.sort()
            if best is None or statistics.median(times) < statistics.median(best):
                best = times
    assert best is not None
    median = statistics.median(best)
    p95 = best[min(len(best) - 1, int(round(0.95 * (len(best) - 1))))]
    return SpeedResult(name or type(net).__name__, batch_size, input_size, used, device, median, p95,
                       median / batch_size, dict(options or {}, channels_last=channels_last), loadavg(), clock)


def time_backbone(name: str, *, batch_size: int = 1, embedding_dim: int = 128, input_size: int = 112,
                  fuse: bool = True, channels_last: bool = True, jit: bool = False, threads: int | None = None,
                  warmup: int = 10, repeat: int = 50, rounds: int = 1, device: str = "cpu", clock: str = "wall",
                  **backbone_kwargs: Any) -> SpeedResult:
    """Build backbone ``name`` (random weights: speed does not depend on them) and time its inference.

    ``fuse``/``channels_last`` are the Embedder's defaults; ``jit`` additionally freezes a TorchScript trace.
    """
    torch.manual_seed(0)
    net = create_backbone(name, embedding_dim=embedding_dim, input_size=input_size, **backbone_kwargs)
    net = prepare_for_inference(net, fuse=fuse, channels_last=channels_last, device=device)
    if jit:
        example = torch.randn(1, 3, input_size, input_size, device=device)
        if channels_last:
            example = example.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            net = torch.jit.freeze(torch.jit.trace(net, example).eval())
    options = {"fuse": fuse, "jit": jit, **backbone_kwargs}
    return time_module(net, batch_size=batch_size, input_size=input_size, warmup=warmup, repeat=repeat,
                       rounds=rounds, threads=threads, channels_last=channels_last, device=device, clock=clock,
                       name=name, options=options)


def train_throughput(name: str, *, batch_size: int = 128, steps: int = 3, warmup: int = 1, embedding_dim: int = 128,
                     input_size: int = 112, threads: int | None = None, channels_last: bool = False,
                     device: str = "cpu", clock: str = "wall", **backbone_kwargs: Any) -> float:
    """Images/s of forward + backward + SGD step in train mode (a plain linear softmax head on top).

    ``channels_last=False`` also switches off the backbones' own NHWC conversion, to show its effect.

    Measures the backbone's share of a training step (the trainer's real loss adds little on top), from
    the fastest of ``steps`` timed steps after ``warmup`` untimed ones. ``channels_last``: NHWC tensors
    (faster for some nets on the CPU, see docs/models.md). ``clock="thread"``: images per CPU-second of
    one thread (one core's rate, robust on a busy machine).
    """
    timer, threads = _clock(clock, threads, device)
    torch.manual_seed(0)
    net = create_backbone(name, embedding_dim=embedding_dim, input_size=input_size, **backbone_kwargs).to(device)
    head = nn.Linear(embedding_dim, 100).to(device)
    if hasattr(net, "prefer_channels_last"):
        net.prefer_channels_last = channels_last
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(list(net.parameters()) + list(head.parameters()), lr=0.01, momentum=0.9)
    x = torch.randn(batch_size, 3, input_size, input_size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 100, (batch_size,), device=device)
    net.train()
    step_times: list[float] = []
    with torch_threads(threads):
        for i in range(warmup + max(1, steps)):
            _sync(device)
            t0 = timer()
            loss = nn.functional.cross_entropy(head(net(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            _sync(device)
            if i >= warmup:
                step_times.append(timer() - t0)
    return batch_size / min(step_times)


def profile_backbone(name: str, *, batch_sizes: Sequence[int] = (1, 32), train_batch: int = 128, train_steps: int = 3,
                     threads: int | None = None, repeat: int = 50, rounds: int = 3, clocks: Sequence[str] = CLOCKS,
                     embedding_dim: int = 128, quiet: float | None = None, quiet_timeout_s: float = 600.0,
                     **backbone_kwargs: Any) -> dict[str, Any]:
    """One row of the backbones table: params, MMAC, ms/face per batch size, train images/s (NCHW and NHWC).

    Keys: ``ms_per_face_b{B}`` / ``ms_p95_b{B}`` (wall clock, ``threads``), ``cpu1_ms_per_face_b{B}`` (one
    thread's CPU time), ``train_images_per_s[_channels_last]`` (wall) and ``cpu1_train_images_per_s[...]``.
    ``quiet``: run each wall-clock timing through ``run_when_quiet(max_others=quiet)``; the largest share
    of CPU other processes took during an accepted timing is ``others_cpu_max``.
    """
    torch.manual_seed(0)
    net = create_backbone(name, embedding_dim=embedding_dim, **backbone_kwargs)
    input_size = int(getattr(net, "input_size", backbone_kwargs.get("input_size", 112)))
    backbone_kwargs = {k: v for k, v in backbone_kwargs.items() if k != "input_size"}
    row: dict[str, Any] = {
        "backbone": name, "options": backbone_kwargs, "embedding_dim": embedding_dim, "input_size": input_size,
        "params": param_count(net),
        "mmac": count_macs(net, input_size) / 1e6,
    }
    row["mflops"] = 2 * row["mmac"]
    row["threads"] = threads or torch.get_num_threads()
    loads = [loadavg()]
    shares: list[float] = []

    def measured(clock: str, fn: Callable[[], R]) -> R:
        if quiet is None or clock != "wall":
            return fn()
        out, share = run_when_quiet(fn, max_others=quiet, timeout_s=quiet_timeout_s)
        if share is not None:
            shares.append(share)
        return out

    for clock in clocks:
        prefix = "" if clock == "wall" else "cpu1_"
        for bs in batch_sizes:
            r = measured(clock, lambda: time_backbone(
                name, batch_size=bs, threads=threads, repeat=repeat if bs == 1 else max(5, repeat // 5), rounds=rounds,
                clock=clock, embedding_dim=embedding_dim, input_size=input_size, **backbone_kwargs))
            row[f"{prefix}ms_per_face_b{bs}"] = r.ms_per_face
            row[f"{prefix}ms_p95_b{bs}"] = r.ms_per_batch_p95 / bs
            loads.append(r.loadavg)
        if train_steps > 0:
            for suffix, cl in (("", False), ("_channels_last", True)):
                row[f"{prefix}train_images_per_s{suffix}"] = measured(clock, lambda: train_throughput(
                    name, batch_size=train_batch, steps=train_steps, threads=threads, channels_last=cl, clock=clock,
                    embedding_dim=embedding_dim, input_size=input_size, **backbone_kwargs))
            loads.append(loadavg())
    known = [v for v in loads if v is not None]
    row["loadavg_max"] = max(known) if known else None
    if quiet is not None:
        row["others_cpu_max"] = round(max(shares), 3) if shares else None
    return row


def _parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"resnet9:width=0.5"`` -> ("resnet9", {"width": 0.5})."""
    name, _, rest = spec.partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return name, kwargs


def _fmt(row: dict[str, Any], key: str, digits: int = 2) -> str:
    value = row.get(key)
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The backbones table of docs/models.md (columns present in the rows)."""
    lines = ["| backbone | params (M) | MMAC | ms/face b1 (p95) | ms/face b32 | 1-core CPU ms/face b1 / b32 | "
             "train img/s NCHW / NHWC | train img/s per core NCHW / NHWC | load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        opts = ",".join(f"{k}={v}" for k, v in r["options"].items())
        label = r["backbone"] + (f" ({opts})" if opts else "")
        lines.append(
            f"| {label} | {r['params'] / 1e6:.2f} | {r['mmac']:.0f} | {_fmt(r, 'ms_per_face_b1')} ({_fmt(r, 'ms_p95_b1')}) | "
            f"{_fmt(r, 'ms_per_face_b32')} | {_fmt(r, 'cpu1_ms_per_face_b1')} / {_fmt(r, 'cpu1_ms_per_face_b32')} | "
            f"{_fmt(r, 'train_images_per_s', 0)} / {_fmt(r, 'train_images_per_s_channels_last', 0)} | "
            f"{_fmt(r, 'cpu1_train_images_per_s', 0)} / {_fmt(r, 'cpu1_train_images_per_s_channels_last', 0)} | "
            f"{r.get('loadavg_max')} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m faceapp.embedding.speed [SPEC ...] [--threads 2] [--json]``; SPEC = name[:key=value,...]."""
    parser = argparse.ArgumentParser(prog="python -m faceapp.embedding.speed", description=main.__doc__)
    parser.add_argument("specs", nargs="*", help="backbones, e.g. mobilefacenet resnet9:width=0.5 (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeat", type=int, default=50, help="timed batch-1 passes per round (batch 32 uses repeat/5)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds; the one with the lowest median counts")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps at batch 128 (0: skip)")
    parser.add_argument("--clock", choices=[*CLOCKS, "both"], default="both",
                        help="wall: elapsed time with --threads; thread: one thread's CPU time (robust on a busy machine)")
    parser.add_argument("--quiet", type=float, default=None, metavar="SHARE",
                        help="wall-clock timings wait for, and are retried until, other processes use < SHARE of the CPU")
    parser.add_argument("--quiet-timeout", type=float, default=600.0, help="seconds to wait for quiet per timing")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a Markdown table")
    args = parser.parse_args(argv)
    specs = args.specs or list(list_backbones())
    rows = []
    for spec in specs:
        name, kwargs = _parse_spec(spec)
        clocks = CLOCKS if args.clock == "both" else (args.clock,)
        rows.append(profile_backbone(name, threads=args.threads, repeat=args.repeat, rounds=args.rounds,
                                     train_steps=args.train_steps, clocks=clocks, quiet=args.quiet,
                                     quiet_timeout_s=args.quiet_timeout, **kwargs))
        if not args.json:
            print(markdown_table(rows[-1:]).splitlines()[-1], flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print()
        print(markdown_table(rows))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
