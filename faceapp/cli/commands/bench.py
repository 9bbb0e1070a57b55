"""``faceapp bench``: time each pipeline stage on real images (median and p95 after warm-up)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from faceapp.cli.commands.pipeline import int_at_least
from faceapp.cli.output import emit, print_progress
from faceapp.core.errors import ExitCode


def _table(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [f"faceapp bench on {env.get('cpu_count')} CPU(s), torch {env.get('torch')} "
             f"({env.get('torch_threads')} threads), mediapipe {env.get('mediapipe')}, opencv {env.get('opencv')}"
             + (f", CUDA {env['cuda']}" if env.get("cuda") else ", no CUDA")
             + (f"; load average {env['load_average_1m']}" if env.get("load_average_1m") is not None else ""),
             f"{'stage':16s} {'median ms':>10s} {'p95 ms':>9s} {'ms/item':>9s} {'items/s':>9s}  {'target':18s} note"]
    for s in report["stages"]:
        if s["skipped"] or s["error"]:
            lines.append(f"{s['name']:16s} {'skipped: ' + s['skipped'] if s['skipped'] else 'error: ' + s['error']}")
            continue
        verdict = "" if s["target_met"] is None else (" ok" if s["target_met"] else " MISSED")
        target = f"{s['target']}{verdict}" if s["target"] else ""
        lines.append(f"{s['name']:16s} {s['median_ms']:10.3f} {s['p95_ms']:9.3f} {s['per_item_ms']:9.3f} "
                     f"{s['per_second']:9.1f}  {target:18s} {s['repeat']} calls of {s['items']} {s['unit']}(s); {s['note']}")
    return "\n".join(lines)


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark stages and print the report."""
    from faceapp.bench.framework import BENCH_STAGES, run_bench, stage_names
    from faceapp.core.progress import run_to_completion

    names = stage_names()
    if args.list:
        emit(args, {n: BENCH_STAGES.get(n).summary for n in names},
             "\n".join(f"{n:16s} {BENCH_STAGES.get(n).summary}" for n in names))
        return int(ExitCode.OK)
    wanted = [n.strip() for n in args.stages.split(",") if n.strip()] if args.stages else None
    unknown = [n for n in wanted or [] if n not in names]
    if unknown:
        print(f"error: unknown stage(s) {', '.join(unknown)}; known: {', '.join(names)}", file=sys.stderr)
        return int(ExitCode.USAGE)
    options = {"images_dir": args.images, "mediapipe_dir": args.mediapipe_dir, "model_dir": args.model,
               "ann_kind": args.ann_kind}
    quiet = args.json

    def progress(event: Any) -> None:
        if not quiet and event.message != "done":
            print_progress(event)

    job = run_bench(wanted, repeat=args.repeat, warmup=args.warmup, options=options,
                    max_seconds=args.max_seconds if args.max_seconds > 0 else None, rounds=args.rounds)
    report = run_to_completion(job, progress)
    data = report.to_dict()
    emit(args, data, _table(data))
    return int(ExitCode.OK)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``faceapp bench``."""
    p = subparsers.add_parser("bench", help="time each pipeline stage on real images",
                              description="Time each stage (median and p95 over --repeat calls after --warmup "
                                          "calls): image decode, detect + landmarks (IMAGE and VIDEO mode), "
                                          "align, embed at batch 1 and 32 (CPU; CUDA when present), and the "
                                          "whole pipeline per frame of a 640x480 one-face video. Targets are "
                                          "reported, never enforced.")
    p.add_argument("--stages", metavar="A,B", help="comma-separated stage names (default: all; see --list)")
    p.add_argument("--repeat", type=int_at_least(1), default=50, help="timed calls per stage (default 50)")
    p.add_argument("--warmup", type=int_at_least(0), default=5, help="untimed calls first (default 5)")
    p.add_argument("--rounds", type=int_at_least(1), default=1,
                   help="time each stage this many times and report the round with the lowest median "
                        "(use 3 on a machine shared with other jobs; default 1)")
    p.add_argument("--max-seconds", type=float, default=20.0,
                   help="stop timing a stage after this many seconds (at least 3 calls; 0 = no cap; default 20)")
    p.add_argument("--images", type=Path, metavar="DIR", help="photos to use (default: the CelebA subset)")
    p.add_argument("--mediapipe-dir", "--model-dir", dest="mediapipe_dir", type=Path, metavar="DIR",
                   help="folder holding the MediaPipe models")
    p.add_argument("--model", type=Path, metavar="DIR", help="embedding model folder (default: the active one)")
    p.add_argument("--ann-kind", choices=("hnsw", "ivf"), default=None,
                   help="FAISS structure of the identify-ann-* stages (default: chosen by gallery size)")
    p.add_argument("--list", action="store_true", help="list the stages and exit")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_bench)
