"""Measure backbones: inference latency, training throughput, multiply-adds and parameters.

Reusable by ``faceapp bench`` and by ``python -m faceapp.embedding.speed`` (which prints the table in
docs/models.md). Latency is the median (and p95) over ``repeat`` timed forward passes in eval mode under
``torch.inference_mode`` after ``warmup`` untimed ones, with the inference optimisations the Embedder
applies (BN folding, channels-last) unless switched off. With ``rounds`` > 1 the round with the lowest
median is reported: on a shared machine the other rounds mostly measure someone else's load. The
1-minute load average is recorded with each result. Nothing here asserts a timing: numbers depend on
the machine and on its load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from faceapp.nn.backbones import create_backbone, list_backbones, prepare_for_inference


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


def time_module(net: nn.Module, *, batch_size: int = 1, input_size: int = 112, warmup: int = 10,
                repeat: int = 50, rounds: int = 1, threads: int | None = None, channels_last: bool = True,
                device: str = "cpu", name: str = "", options: dict[str, Any] | None = None) -> SpeedResult:
    """Time ``net`` (already prepared; see ``prepare_for_inference``) on random input of one batch size.

    ``rounds`` rounds of ``repeat`` timed passes; the round with the lowest median is reported.
    """
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
                t0 = time.perf_counter()
                net(x)
                _sync(device)
                times.append((time.perf_counter() - t0) * 1000.0)
            times.sort()
            if best is None or statistics.median(times) < statistics.median(best):
                best = times
    assert best is not None
    median = statistics.median(best)
    p95 = best[min(len(best) - 1, int(round(0.95 * (len(best) - 1))))]
    return SpeedResult(name or type(net).__name__, batch_size, input_size, used, device, median, p95,
                       median / batch_size, dict(options or {}, channels_last=channels_last), loadavg())


def time_backbone(name: str, *, batch_size: int = 1, embedding_dim: int = 128, input_size: int = 112,
                  fuse: bool = True, channels_last: bool = True, jit: bool = False, threads: int | None = None,
                  warmup: int = 10, repeat: int = 50, rounds: int = 1, device: str = "cpu",
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
                       rounds=rounds, threads=threads, channels_last=channels_last, device=device, name=name, options=options)


def train_throughput(name: str, *, batch_size: int = 128, steps: int = 3, warmup: int = 1, embedding_dim: int = 128,
                     input_size: int = 112, threads: int | None = None, channels_last: bool = False,
                     device: str = "cpu", **backbone_kwargs: Any) -> float:
    """Images/s of forward + backward + SGD step in train mode (a plain linear softmax head on top).

    Measures the backbone's share of a training step (the trainer's real loss adds little on top), from
    the fastest of ``steps`` timed steps after ``warmup`` untimed ones. ``channels_last`` (NHWC) speeds up
    the depthwise nets several-fold on the CPU.
    """
    torch.manual_seed(0)
    net = create_backbone(name, embedding_dim=embedding_dim, input_size=input_size, **backbone_kwargs).to(device)
    head = nn.Linear(embedding_dim, 100).to(device)
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
            t0 = time.perf_counter()
            loss = nn.functional.cross_entropy(head(net(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            _sync(device)
            if i >= warmup:
                step_times.append(time.perf_counter() - t0)
    return batch_size / min(step_times)


def profile_backbone(name: str, *, batch_sizes: Sequence[int] = (1, 32), train_batch: int = 128, train_steps: int = 3,
                     threads: int | None = None, repeat: int = 50, rounds: int = 3,
                     **backbone_kwargs: Any) -> dict[str, Any]:
    """One row of the backbones table: params, MMAC, ms/face per batch size, train images/s (NCHW and NHWC)."""
    torch.manual_seed(0)
    net = create_backbone(name, **backbone_kwargs)
    input_size = int(getattr(net, "input_size", backbone_kwargs.get("input_size", 112)))
    row: dict[str, Any] = {
        "backbone": name, "options": backbone_kwargs, "params": param_count(net),
        "mmac": count_macs(net, input_size) / 1e6,
    }
    row["mflops"] = 2 * row["mmac"]
    loads = [loadavg()]
    for bs in batch_sizes:
        r = time_backbone(name, batch_size=bs, threads=threads, repeat=repeat if bs == 1 else max(5, repeat // 5),
                          rounds=rounds, **backbone_kwargs)
        row[f"ms_per_face_b{bs}"] = r.ms_per_face
        row[f"ms_p95_b{bs}"] = r.ms_per_batch_p95 / bs
        loads.append(r.loadavg)
    row["threads"] = torch.get_num_threads() if not threads else threads
    if train_steps > 0:
        for key, cl in (("train_images_per_s", False), ("train_images_per_s_channels_last", True)):
            row[key] = train_throughput(name, batch_size=train_batch, steps=train_steps, threads=threads,
                                        channels_last=cl, **backbone_kwargs)
        loads.append(loadavg())
    known = [v for v in loads if v is not None]
    row["loadavg_max"] = max(known) if known else None
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


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The backbones table of docs/models.md."""
    lines = ["| backbone | params (M) | MMAC | MFLOPs | ms/face b1 (p95) | ms/face b32 | train img/s b128 NCHW / NHWC | load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        opts = ",".join(f"{k}={v}" for k, v in r["options"].items())
        label = r["backbone"] + (f" ({opts})" if opts else "")
        train = (f"{r['train_images_per_s']:.0f} / {r['train_images_per_s_channels_last']:.0f}"
                 if "train_images_per_s" in r else "-")
        lines.append(f"| {label} | {r['params'] / 1e6:.2f} | {r['mmac']:.0f} | {r['mflops']:.0f} | "
                     f"{r['ms_per_face_b1']:.2f} ({r['ms_p95_b1']:.2f}) | {r.get('ms_per_face_b32', float('nan')):.2f} | "
                     f"{train} | {r.get('loadavg_max')} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m faceapp.embedding.speed [SPEC ...] [--threads 2] [--json]``; SPEC = name[:key=value,...]."""
    parser = argparse.ArgumentParser(prog="python -m faceapp.embedding.speed", description=main.__doc__)
    parser.add_argument("specs", nargs="*", help="backbones, e.g. mobilefacenet resnet9:width=0.5 (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeat", type=int, default=50, help="timed batch-1 passes per round (batch 32 uses repeat/5)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds; the one with the lowest median counts")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps at batch 128 (0: skip)")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a Markdown table")
    args = parser.parse_args(argv)
    specs = args.specs or list(list_backbones())
    rows = []
    for spec in specs:
        name, kwargs = _parse_spec(spec)
        rows.append(profile_backbone(name, threads=args.threads, repeat=args.repeat, rounds=args.rounds,
                                     train_steps=args.train_steps, **kwargs))
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
