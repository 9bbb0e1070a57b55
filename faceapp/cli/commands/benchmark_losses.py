"""``faceapp benchmark-losses``: the same backbone, data and budget trained with each loss of the zoo,
scored on CFP and/or an LFW-format pairs file; writes results.md + results.json (docs/loss_benchmark.md).

Progress lines go to stderr; the table goes to stdout (Markdown, or results.json with ``--json``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from faceapp.cli.commands.training import (split_kv, _typed, add_common_options, add_training_options, build_config,
                                           cancel_on_sigint, parse_folds)
from faceapp.cli.output import emit, print_progress
from faceapp.core.errors import DatasetError
from faceapp.core.progress import CancelToken, run_to_completion


def _per_loss(items: list[str] | None, option: str) -> dict[str, list[str]]:
    """``["arcface:s=32", "arcface:m=0.4"]`` -> ``{"arcface": ["s=32", "m=0.4"]}`` (loss names checked)."""
    from faceapp.nn.losses import LossConfigError, loss_class

    out: dict[str, list[str]] = {}
    for item in items or []:
        loss, sep, rest = item.partition(":")
        if not sep or not loss.strip() or "=" not in rest:
            raise LossConfigError(f"{option} {item!r}: expected LOSS:NAME=VALUE, e.g. arcface:s=32")
        name = loss.strip().lower()
        loss_class(name)
        out.setdefault(name, []).append(rest)
    return out


def build_benchmark_config(args: argparse.Namespace, command: str = "") -> Any:
    """The BenchmarkConfig of the command line: the training options (as ``faceapp train``) + the sweep."""
    from faceapp.nn.losses import parse_loss_params
    from faceapp.training.benchmark import LOSS_SETTINGS, BenchmarkConfig, EvalProtocol
    from faceapp.training.config import TrainConfig

    base = build_config(args)
    params = {loss: parse_loss_params(loss, kv) for loss, kv in _per_loss(args.per_loss_param, "--loss-param").items()}
    settings: dict[str, dict[str, Any]] = {}
    defaults = TrainConfig()
    for loss, items in _per_loss(args.loss_setting, "--loss-setting").items():
        for key, value in split_kv(items, f"--loss-setting {loss}").items():
            if key not in LOSS_SETTINGS:
                raise DatasetError(f"--loss-setting {loss}:{key}: not a per-loss setting; allowed: {', '.join(LOSS_SETTINGS)}")
            settings.setdefault(loss, {})[key] = _typed(value, getattr(defaults, key), f"--loss-setting {loss}:{key}")
    folds = [] if (args.folds or "all").strip().lower() == "all" else parse_folds(args.folds)
    protocols = []
    if args.cfp:
        names = [p.strip().upper() for p in args.protocols.split(",") if p.strip()]
        bad = [p for p in names if p not in ("FF", "FP")]
        if bad or not names:
            raise DatasetError(f"--protocols {args.protocols!r}: expected FF, FP or FF,FP")
        protocols += [EvalProtocol("cfp", args.cfp, protocol=p, folds=folds) for p in names]
    if args.pairs:
        protocols.append(EvalProtocol("lfw", args.pairs, root=args.root or "", folds=folds))
    if not protocols:
        raise DatasetError("no test protocol: give --cfp DIR (CFP-FF/FP) and/or --pairs FILE (LFW format)")
    # budget: --epochs (or the config's epochs) unless only --max-steps / --time-budget were given
    only_other = args.epochs is None and bool(args.max_steps or args.time_budget)
    return BenchmarkConfig(
        base=base, out=args.out, protocols=protocols, losses=args.losses.split(","), loss_params=params,
        loss_settings=settings, epochs=0.0 if only_other else float(base.epochs), max_steps=base.max_steps,
        time_budget_min=args.time_budget or 0.0, calibration_steps=args.calibration_steps, flip_tta=args.flip_tta,
        failure_policy=args.failure_policy, retry_failed=args.retry_failed, command=command)


def command_line(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The command as a shell line, options in the parser's order with the values given (for the table)."""
    words = ["faceapp", "benchmark-losses"]
    for action in parser._actions:          # noqa: SLF001 - argparse has no public list of actions
        if not action.option_strings or action.dest in ("help", "json", "quiet", "dry_run"):
            continue
        value = getattr(args, action.dest, None)
        flag = action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):  # noqa: SLF001
            words += [flag] if value else []
        elif isinstance(value, list):
            for item in value:
                words += [flag, str(item)]
        elif value is not None and value != action.default:
            words += [flag, str(value)]
    return shlex.join(words)


def _run(args: argparse.Namespace) -> int:
    from faceapp.training.benchmark import benchmark_losses, check_config

    config = build_benchmark_config(args, command_line(args, args.parser))
    if args.dry_run:
        losses = check_config(config)
        emit(args, {"losses": losses, "budget": config.budget_request(), "out": config.out,
                    "protocols": [p.to_dict() for p in config.protocols], "loss_params": config.loss_params,
                    "loss_settings": config.loss_settings, "base": config.base.to_dict(), "command": config.command})
        return 0
    token = CancelToken()
    with cancel_on_sigint(token):
        result = run_to_completion(benchmark_losses(config, token), None if args.quiet else print_progress)
    if result.failed:
        print(f"warning: {len(result.failed)} loss(es) failed and are marked in the table: {', '.join(result.failed)}",
              file=sys.stderr)
    text = (result.markdown + f"\n(results.md and results.json in {result.out}; trained now: "
            f"{', '.join(result.trained) or 'none'}; skipped, already finished: {', '.join(result.skipped) or 'none'})")
    emit(args, result.results, text)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``benchmark-losses``."""
    p = subparsers.add_parser(
        "benchmark-losses", help="train one backbone with each loss on the same data and budget, table of CFP/LFW scores",
        description="Trains the same backbone on the same data with each loss of the zoo, each seeing the same "
                    "number of images (its natural sampler: shuffled, or P x K for pair/triplet losses), "
                    "validates on a hold-out of the training identities, then scores each model once on the "
                    "test protocols with faceapp eval's code. Writes OUT/results.md and OUT/results.json; a "
                    "rerun skips finished losses and resumes an interrupted one (Ctrl-C stops cleanly). "
                    "Training options are those of faceapp train (docs/training.md); see docs/loss_benchmark.md.")
    add_training_options(p)
    p.add_argument("--out", required=True, metavar="DIR", help="benchmark folder (models, runs, results.md/json)")
    p.add_argument("--losses", default="all", metavar="LIST", help="loss names separated by commas, or all (default)")
    p.add_argument("--loss-param", action="append", metavar="LOSS:K=V", dest="per_loss_param",
                   help="hyper-parameter of one loss, e.g. arcface:s=32 (repeatable)")
    p.add_argument("--loss-setting", action="append", metavar="LOSS:K=V",
                   help="training setting of one loss only, e.g. triplet:lr=0.05 (lr, optimizer, momentum, "
                        "weight_decay, schedule, warmup_epochs, min_lr, step_gamma, grad_clip, sampler, pk_k, precision); "
                        "shown in the table")
    p.add_argument("--time-budget", type=float, metavar="MINUTES",
                   help="training minutes per loss, turned once into the same number of images for every loss "
                        "from a short measured calibration run (with --epochs/--max-steps: the smallest wins)")
    p.add_argument("--calibration-steps", type=int, default=8, metavar="N", help="steps timed for --time-budget (8)")
    p.add_argument("--cfp", metavar="DIR", help="CFP folder: test on its official protocol(s)")
    p.add_argument("--protocols", default="FF,FP", metavar="LIST", help="CFP protocols, FF,FP (default) or one")
    p.add_argument("--pairs", metavar="FILE", help="LFW-format pairs file to test on (with --root)")
    p.add_argument("--root", metavar="DIR", help="image root of --pairs (default: its folder)")
    p.add_argument("--folds", default="all", metavar="LIST", help="test folds, e.g. 9,10, or all (default)")
    p.add_argument("--flip-tta", action="store_true", help="embed each face and its mirror (validation and test)")
    p.add_argument("--failure-policy", choices=["wrong", "reject"], default="wrong",
                   help="pairs with an image where no face was found: errors (default) or answered 'different'")
    p.add_argument("--retry-failed", action="store_true", help="train again the losses recorded as failed")
    p.add_argument("--dry-run", action="store_true", help="check and print the plan, train nothing")
    add_common_options(p, "results.json")
    p.set_defaults(handler=_run, parser=p)
