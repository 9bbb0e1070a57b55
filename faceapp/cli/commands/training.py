"""``faceapp train``, ``faceapp eval``, ``faceapp losses`` and ``faceapp cache``: the trainer from the shell.

Progress lines go to stderr; the result goes to stdout (text, or JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

from faceapp.cli.commands.pipeline import int_at_least
from faceapp.cli.output import emit, print_progress
from faceapp.core.errors import DatasetError
from faceapp.core.progress import CancelToken, run_to_completion
from faceapp.core.engines import ENGINES


@contextlib.contextmanager
def cancel_on_sigint(token: CancelToken):  # noqa: ANN201 - context manager
    """First Ctrl-C cancels ``token`` (the job stops cleanly and says how to resume); the second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        print("stopping at the next step (Ctrl-C again to abort)...", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------------------------- parsing
def split_kv(items: list[str] | None, option: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> {"a": "1", "b": "x"}; DatasetError naming ``option`` for an item without "="."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DatasetError(f"{option} {item!r}: expected NAME=VALUE")
        out[key.strip()] = value.strip()
    return out


def _typed(value: str, default: Any, where: str) -> Any:
    """Text from the command line converted to the type of ``default``."""
    if isinstance(default, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise DatasetError(f"{where}: expected true or false, got {value!r}")
    try:
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise DatasetError(f"{where}: expected a number, got {value!r}") from None
    return value


def literal_value(value: str) -> Any:
    """A ``--backbone-param`` value: JSON if it parses (numbers, true/false), else the text."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def parse_data_arg(text: str) -> Any:
    """``DIR[::key=value...]`` -> DatasetSpec, e.g. ``cfp::identities=001-400::include_profile=false``."""
    from faceapp.data.datasets import DatasetSpec

    path, *options = text.split("::")
    defaults = {f.name: f.default for f in fields(DatasetSpec) if f.name != "path"}
    values: dict[str, Any] = {}
    for key, value in split_kv(options, f"--data {text}").items():
        if key not in defaults:
            raise DatasetError(f"--data {text!r}: unknown option {key!r}; known: {', '.join(defaults)}")
        values[key] = _typed(value, defaults[key], f"--data {text!r} option {key}")
    return DatasetSpec(path=path, **values)


def parse_folds(text: str | None) -> list[int]:
    """"9,10" -> [9, 10]."""
    if not text:
        return []
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise DatasetError(f"folds {text!r}: expected numbers separated by commas, e.g. 9,10") from None


# (argument name, TrainConfig field) for the plain scalar options
_SCALARS = [
    ("name", "name"), ("out", "out"), ("run_dir", "run_dir"), ("cache_dir", "cache_dir"), ("loss", "loss"),
    ("backbone", "backbone"), ("embedding_dim", "embedding_dim"), ("input_size", "input_size"),
    ("epochs", "epochs"), ("max_steps", "max_steps"), ("batch_size", "batch_size"), ("sampler", "sampler"),
    ("pk_k", "pk_k"), ("min_images", "min_images"), ("optimizer", "optimizer"), ("lr", "lr"),
    ("momentum", "momentum"), ("weight_decay", "weight_decay"), ("schedule", "schedule"),
    ("warmup_epochs", "warmup_epochs"), ("grad_clip", "grad_clip"), ("device", "device"), ("seed", "seed"),
    ("threads", "threads"), ("checkpoint_every", "checkpoint_every"), ("log_every", "log_every"),
    ("resume", "resume"), ("augment_on", "augment_on"), ("init", "init"), ("backbone_lr_mult", "backbone_lr_mult"),
    ("freeze_epochs", "freeze_epochs"), ("head_init", "head_init"), ("precision", "precision"),
    ("data_on_device", "data_on_device"), ("time_budget_s", "time_budget_s"),
    ("teacher", "teacher"), ("distill_embed", "distill_embed_weight"), ("distill_relational", "distill_relational_weight"),
    ("int8", "int8_calibration"),
]


def build_config(args: argparse.Namespace) -> Any:
    """The TrainConfig of ``faceapp train``: the ``--config`` file (or defaults) overridden by options."""
    from faceapp.nn.losses import parse_loss_params
    from faceapp.training.config import AugmentConfig, TrainConfig, load_config

    config = load_config(args.config) if args.config else TrainConfig()
    if args.data:
        config.data = [parse_data_arg(d) for d in args.data]
    for arg, key in _SCALARS:
        value = getattr(args, arg, None)      # a command may offer only some of the options (benchmark-losses)
        if value is not None:
            setattr(config, key, value)
    if getattr(args, "out", None) and getattr(args, "name", None) is None and config.name == "model":
        config.name = Path(args.out).name
    if getattr(args, "loss_param", None):
        config.loss_params = {**config.loss_params, **parse_loss_params(config.loss, args.loss_param)}
    if args.backbone_param:
        config.backbone_params = {**config.backbone_params,
                                  **{k: literal_value(v) for k, v in split_kv(args.backbone_param, "--backbone-param").items()}}
    if getattr(args, "freeze_bn", False):
        config.freeze_bn = True
    if getattr(args, "distill_param", None):
        from faceapp.nn.losses.distill import parse_distill_params

        config.distill_params = {**config.distill_params, **parse_distill_params(args.distill_param)}
    if config.init and getattr(args, "init", None):
        _architecture_from_start(config, args)
    if args.no_amp:           # the option of the old ``amp`` setting
        if getattr(args, "precision", None) not in (None, "fp32"):
            raise DatasetError(f"--no-amp means --precision fp32; it cannot go with --precision {args.precision}")
        config.precision = "fp32"
    if args.no_channels_last:
        config.channels_last = False
    if args.no_augment:
        config.augment = AugmentConfig.off()
    defaults = vars(AugmentConfig())
    for key, value in split_kv(args.augment, "--augment").items():
        if key not in defaults:
            raise DatasetError(f"--augment {key}: unknown operation; known: {', '.join(defaults)}")
        setattr(config.augment, key, _typed(value, defaults[key], f"--augment {key}"))
    v = config.validation
    if getattr(args, "val_pairs", None) is not None:
        v.pairs = args.val_pairs
    for arg, key in (("val_format", "format"), ("val_root", "root"), ("val_protocol", "protocol"),
                     ("val_holdout", "holdout"), ("val_metric", "metric")):
        if getattr(args, arg, None) is not None:
            setattr(v, key, getattr(args, arg))
    if getattr(args, "val_folds", None) is not None:
        v.folds = parse_folds(args.val_folds)
    if getattr(args, "flip_tta", False):
        v.flip_tta = True
    return config.validate()


def _architecture_from_start(config: Any, args: argparse.Namespace) -> None:
    """With ``--init``, the backbone, embedding size and input size the options leave unset come from the
    starting point (a mismatch the user asked for is refused later, before any work, by the trainer)."""
    from faceapp.embedding.pretrained import start_architecture

    arch = start_architecture(config.init)
    if args.backbone is None:
        config.backbone = arch.backbone
        config.backbone_params = dict(arch.backbone_kwargs)
    if args.embedding_dim is None:
        config.embedding_dim = arch.embedding_dim
    if args.input_size is None:
        config.input_size = arch.input_size


# --------------------------------------------------------------------------------------------- train
def _train(args: argparse.Namespace) -> int:
    from faceapp.training import save_config, train
    from faceapp.training.distributed import context_from_env, launch, strip_nproc

    config = build_config(args)
    if args.save_config:
        save_config(config, args.save_config)
        if args.dry_run:
            print(f"config written to {args.save_config}")
            return 0
    if not config.data:
        raise DatasetError("no training data: give --data DIR (or a --config file with data)")
    if args.dry_run:
        emit(args, config.to_dict())
        return 0
    if args.nproc > 1 and context_from_env().world_size == 1:
        return launch(args.nproc, strip_nproc(args.argv))      # torchrun runs this command in N processes
    ctx = context_from_env()
    token = CancelToken()
    with cancel_on_sigint(token):
        result = run_to_completion(train(config, token), None if args.quiet or not ctx.is_main else print_progress)
    if result is None:                                         # a torchrun worker other than rank 0
        return 0
    data = {"model_dir": result.model_dir, "run_dir": result.run_dir, "steps": result.steps, "epochs": result.epochs,
            "train_time_s": round(result.train_time_s, 1), "images_per_s": round(result.images_per_s, 1),
            "best": result.best, "metrics": result.card.get("metrics", {})}
    val = result.card.get("metrics", {}).get("validation")
    text = [f"model written to {result.model_dir} ({result.steps} steps, {result.train_time_s:.0f} s of training, "
            f"{result.images_per_s:.1f} images/s)"]
    if val:
        text.append(f"best validation ({val['protocol']}, epoch {val['epoch']}): accuracy {val['accuracy'] * 100:.2f}% "
                    f"+- {val['accuracy_std'] * 100:.2f}, EER {val['eer'] * 100:.2f}%, AUC {val['auc']:.4f}"
                    + (" (one fold: threshold tuned on it, optimistic)" if val.get("optimistic") else ""))
    emit(args, data, "\n".join(text))
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an embedding network on dataset folders",
                       description="Train a backbone with a loss of the zoo on one or more dataset folders "
                                   "(aligned once into a cache), validate each epoch, export the best model. "
                                   "Options override the --config file (defaults: docs/training.md). Ctrl-C "
                                   "stops after the current step and saves a checkpoint to resume from.")
    add_training_options(p)
    p.add_argument("--loss", help="loss name (faceapp losses)")
    p.add_argument("--loss-param", action="append", metavar="K=V", help="loss hyper-parameter (repeatable)")
    p.add_argument("--teacher", metavar="SPEC", help="distil from a teacher: a pretrained name (mobilefacenet_ms1m), "
                   "a model folder, onnx:PATH[?mean=R,G,B&std=R,G,B&order=rgb] or dlib (pip install -e \".[dlib]\")")
    p.add_argument("--distill-embed", type=float, metavar="W",
                   help="weight of the embedding-regression term, 1 - cos(projected student, teacher) (default 1)")
    p.add_argument("--distill-relational", type=float, metavar="W",
                   help="weight of the relational term: batch similarity matrices matched (default 0)")
    p.add_argument("--distill-param", action="append", metavar="K=V",
                   help="distiller hyper-parameter, e.g. relational.criterion=smooth_l1 (repeatable)")
    p.add_argument("--val-pairs", metavar="FILE", help="validation protocol: LFW pairs.txt or the CFP folder")
    p.add_argument("--val-format", choices=["lfw", "cfp"])
    p.add_argument("--val-root", metavar="DIR", help="image root of an LFW pairs file")
    p.add_argument("--val-protocol", choices=["FF", "FP"], help="CFP protocol")
    p.add_argument("--val-folds", metavar="LIST", help="protocol folds to validate on, e.g. 9,10")
    p.add_argument("--flip-tta", action="store_true", help="validate with flip test-time augmentation")
    p.add_argument("--time-budget-s", type=float, metavar="SECONDS",
                   help="fit the schedule to this many seconds of training, refitted each epoch from the measured "
                        "step time (0 = none; never more than --epochs)")
    p.add_argument("--resume", metavar="CKPT", help="checkpoint to resume (e.g. <run-dir>/last.pt)")
    p.add_argument("--name", help="model name (default: the --out folder name)")
    p.add_argument("--out", metavar="DIR", help="model folder to export to (default <data dir>/models/NAME)")
    p.add_argument("--run-dir", metavar="DIR", help="checkpoints and history (default <data dir>/runs/NAME)")
    p.add_argument("--save-config", metavar="FILE", help="write the resolved config as JSON")
    p.add_argument("--dry-run", action="store_true", help="resolve and print the config, train nothing")
    add_common_options(p, "the result")
    p.set_defaults(handler=_train)


def add_training_options(p: argparse.ArgumentParser) -> None:
    """The options that build a TrainConfig with ``build_config``, shared by ``train`` and
    ``benchmark-losses``: config file, data, backbone, optimisation, schedule, augmentation, device,
    hold-out validation, logging. (Loss, protocol validation, output and resume are per command.)"""
    p.add_argument("--config", help="JSON or TOML training config (see docs/training.md)")
    p.add_argument("--data", action="append", metavar="DIR[::key=value...]",
                   help="dataset folder (repeatable): <identity>/<images>, the CFP layout, or a pack of aligned crops "
                        "(.npz, scripts/pack_training_crops.py); options name=, layout=auto|folder|cfp|pack, "
                        "identities=001-400, exclude=NAMES|@FILE (in a pack also cfp/301-400), include_profile=, pad=, "
                        "max_per_identity=")
    p.add_argument("--backbone", help="backbone name (mobilefacenet, mobilefacenet_relu6, resnet9, iresnet18, tiny)")
    p.add_argument("--init", metavar="FROM", help="start from a model folder or a pretrained source "
                   "(mobilefacenet_ms1m); sets the backbone unless --backbone is given")
    p.add_argument("--backbone-lr-mult", type=float, metavar="F",
                   help="backbone learning rate as a fraction of --lr (fine-tuning: e.g. 0.1; the head gets --lr)")
    p.add_argument("--freeze-epochs", type=float, metavar="E", help="head-only epochs at the start (backbone frozen)")
    p.add_argument("--freeze-bn", action="store_true", help="keep the backbone's BatchNorm statistics fixed")
    p.add_argument("--head-init", choices=["auto", "centroids", "random"],
                   help="classifier head start (auto: class centroids when starting from weights)")
    p.add_argument("--backbone-param", action="append", metavar="K=V", help="backbone option, e.g. width=0.5")
    p.add_argument("--int8", type=int, metavar="N",
                   help="also write the exported model's int8 network (the fast CPU engine), calibrated on N "
                        "training crops (0 = none; see faceapp quantize)")
    p.add_argument("--embedding-dim", type=int)
    p.add_argument("--input-size", type=int, help="network input side (crops are 112)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-steps", type=int, help="stop after this many steps")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--sampler", choices=["auto", "shuffle", "pk"])
    p.add_argument("--pk-k", type=int, help="images per identity in P x K batches")
    p.add_argument("--min-images", type=int, help="drop identities with fewer aligned images")
    p.add_argument("--optimizer", choices=["sgd", "adamw"])
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=["cosine", "step", "constant"])
    p.add_argument("--warmup-epochs", type=float)
    p.add_argument("--grad-clip", type=float, help="max gradient norm, 0 = off")
    p.add_argument("--no-augment", action="store_true", help="switch every augmentation off")
    p.add_argument("--augment", action="append", metavar="K=V", help="augmentation setting, e.g. flip=0.5 blur=0")
    p.add_argument("--augment-on", choices=["auto", "cpu", "device"],
                   help="where augmentation runs: auto = on the GPU when training on CUDA, else numpy on the CPU")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"],
                   help="auto (default): bfloat16 on CUDA that has it, else float16 + loss scaling; float32 on the CPU")
    p.add_argument("--no-amp", action="store_true", help="float32 everywhere (the same as --precision fp32)")
    p.add_argument("--data-on-device", choices=["auto", "on", "off"],
                   help="the whole training set on the device as uint8 (auto: on CUDA when the batches are built "
                        "there and it fits)")
    p.add_argument("--no-channels-last", action="store_true", help="train with NCHW instead of NHWC tensors")
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, help="torch CPU threads (0 = all cores)")
    p.add_argument("--nproc", type=int_at_least(1), default=1, metavar="N",
                   help="data-parallel training in N processes (one per GPU; gloo on CPU) launched with torchrun: "
                        "--batch-size is the global batch, rank 0 writes checkpoints and the model (docs/scaling.md)")
    p.add_argument("--val-holdout", type=float, help="fraction of identities held out when no --val-pairs")
    p.add_argument("--val-metric", choices=["accuracy", "eer"], help="what selects the best checkpoint")
    p.add_argument("--checkpoint-every", type=int, metavar="STEPS", help="0 = at each epoch end only")
    p.add_argument("--log-every", type=int, metavar="STEPS")


def add_common_options(p: argparse.ArgumentParser, what: str) -> None:
    """``--cache-dir``, ``--quiet`` and ``--json`` (``what`` completes the --json help)."""
    p.add_argument("--cache-dir", metavar="DIR", help="alignment caches (default <cache dir>/aligned)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON")


# ---------------------------------------------------------------------------------------------- eval
def _eval(args: argparse.Namespace) -> int:
    from faceapp.embedding import Embedder
    from faceapp.evaluation.protocols import read_protocol
    from faceapp.data.cache import AlignSettings
    from faceapp.data.evaluate import evaluate_identification, evaluate_protocol

    embedder = Embedder.load(args.model, device=args.device, flip_tta=args.flip_tta, engine=args.engine)
    progress = None if args.quiet else print_progress
    cache_root = Path(args.cache_dir) if args.cache_dir else None
    if args.identify:
        spec = parse_data_arg(args.identify)
        report = run_to_completion(evaluate_identification(embedder, spec, n_gallery=args.gallery_size,
                                                           cache_root=cache_root), progress)
        emit(args, {"model": embedder.model_id, "trained": embedder.trained, **report.to_dict()}, report.summary())
        return 0
    if not args.pairs:
        raise DatasetError("give --pairs FILE (LFW pairs.txt or the CFP folder) or --identify DIR")
    protocols = args.protocol or ["FF"]
    if args.format == "lfw":
        protocols = ["-"]
    results = []
    for name in protocols:
        protocol = read_protocol(args.format, args.pairs, args.root, cfp_protocol=name if name != "-" else "FF",
                                 folds=parse_folds(args.folds) or None)
        report = run_to_completion(evaluate_protocol(embedder, protocol, failure_policy=args.failure_policy,
                                                     cache_root=cache_root,
                                                     settings=AlignSettings(template=args.template)), progress)
        results.append(report)
    head = f"model {embedder.model_id}" + ("" if embedder.trained else " (UNTRAINED: numbers mean nothing)") + \
           (", flip-TTA" if embedder.flip_tta else "") + f", engine {embedder.engine}"
    data: Any = [r.to_dict() for r in results]
    if args.write_card:
        _write_test_metrics(args, embedder, data)
    emit(args, data[0] if len(data) == 1 else data, "\n\n".join([head] + [r.summary() for r in results]))
    return 0


def _write_test_metrics(args: argparse.Namespace, embedder: Any, reports: list[dict[str, Any]]) -> None:
    """Record the reports in the evaluated model's card under ``metrics.test`` (keyed by protocol, with
    "flip-TTA" / the template / "int8" when not the defaults), so a card carries the numbers its README row
    quotes."""
    from faceapp.embedding.model_folder import read_card, write_card

    folder = Path(args.model) if args.model else None
    if folder is None or not (folder / "model_card.json").is_file():
        raise DatasetError("--write-card needs --model pointing at a model folder with a model_card.json")
    card = read_card(folder)
    metrics = card.setdefault("metrics", {})
    test = metrics.setdefault("test", {})
    keep = ("protocol", "accuracy", "accuracy_std", "eer", "auc", "tar_at_far", "n_failed_images", "n_failed_pairs",
            "failure_policy", "folds")
    for report in reports:
        key = report["protocol"].split(" ")[0] + (" flip-TTA" if embedder.flip_tta else "") + \
            (f" {args.template} template" if args.template != "standard" else "") + \
            (" int8" if embedder.engine == "onnxruntime-int8" else "")
        test[key] = {k: report.get(k) for k in keep} | {"engine": embedder.engine}
    test["note"] = ("people never trained on; each fold's threshold chosen on the other folds; "
                    "written by faceapp eval --write-card")
    write_card(folder, card)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score a model on a pairs protocol (LFW/CFP) or rank-1 identification",
                       description="Verification on LFW pairs.txt or CFP's official protocol: 10-fold accuracy "
                                   "(threshold from the other folds), AUC, EER, TAR@FAR. Images where no face is "
                                   "found make their pairs count as errors (their number is reported).")
    p.add_argument("--model", metavar="DIR", help="model folder (default: the active model)")
    p.add_argument("--pairs", metavar="FILE", help="LFW pairs.txt, or the cfp/ (or cfp/Protocol) folder")
    p.add_argument("--format", choices=["lfw", "cfp"], default="lfw", help="protocol format (default lfw)")
    p.add_argument("--root", metavar="DIR", help="image root of an LFW pairs file (default: its folder)")
    p.add_argument("--protocol", action="append", choices=["FF", "FP"], help="CFP protocol (repeatable; default FF)")
    p.add_argument("--folds", metavar="LIST", help="only these folds, e.g. 9,10")
    p.add_argument("--flip-tta", action="store_true", help="embed each face and its mirror image")
    p.add_argument("--write-card", action="store_true",
                   help="also record the results in the model folder's card (metrics.test)")
    p.add_argument("--template", choices=["standard", "turned"], default="standard",
                   help="alignment template (standard: every pose, what the shipped models use; turned: the "
                        "template turned with heads past 25 degrees, pipeline version 2)")
    p.add_argument("--failure-policy", choices=["wrong", "reject"], default="wrong",
                   help="ROC score of pairs with a failed image: always wrong (default), or answered 'different'")
    p.add_argument("--identify", metavar="DIR[::key=value...]",
                   help="closed-set identification on a dataset folder instead of pairs")
    p.add_argument("--gallery-size", type=int, default=1, help="gallery images per identity for --identify (1)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    p.add_argument("--engine", choices=ENGINES, default=None,
                   help="embedding engine (default: $FACEAPP_EMBED_ENGINE, else auto: on the CPU the folder's int8 "
                        "network when it ships one)")
    add_common_options(p, "the report")
    p.set_defaults(handler=_eval)


# -------------------------------------------------------------------------------------- losses, cache
def _losses(args: argparse.Namespace) -> int:
    from faceapp.nn.losses import list_losses, loss_class

    rows = []
    for name, summary in list_losses().items():
        cls = loss_class(name)
        rows.append({"name": name, "summary": summary, "pairs": bool(cls.requires_pk_sampler),
                     "classifier": bool(cls.needs_classes),
                     "hyperparameters": {h.name: h.default for h in cls.hyperparameters}})
    width = max(len(r["name"]) for r in rows)
    lines = []
    for r in rows:
        lines.append(f"{r['name']:<{width}}  {r['summary']}")
        if args.params and r["hyperparameters"]:
            lines.append(" " * (width + 2) + ", ".join(f"{k}={v}" for k, v in r["hyperparameters"].items())
                         + ("  [P x K batches]" if r["pairs"] else ""))
    emit(args, rows, "\n".join(lines))
    return 0


def _cache(args: argparse.Namespace) -> int:
    from faceapp.data.cache import AlignSettings, align_images, iter_failures
    from faceapp.data.datasets import scan_dataset

    out = []
    for text in args.data:
        spec = parse_data_arg(text)
        listing = scan_dataset(spec)
        token = CancelToken()
        with cancel_on_sigint(token):
            aligned = run_to_completion(
                align_images(listing.items, name=listing.name, settings=AlignSettings(pad=spec.pad),
                             cache_root=Path(args.cache_dir) if args.cache_dir else None, cancel=token),
                None if args.quiet else print_progress)
        failures = list(iter_failures(aligned, args.show_failures))
        out.append({"dataset": listing.name, "folder": aligned.folder, **aligned.summary,
                    "identities": len(listing.identities), "failures_shown": failures})
        text_lines = [aligned.describe(), f"  cache: {aligned.folder}"] + [f"  {f}" for f in failures]
        if not args.json:
            print("\n".join(text_lines))
    if args.json:
        emit(args, out)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``, ``eval``, ``losses`` and ``cache``."""
    _add_train(subparsers)
    _add_eval(subparsers)
    p = subparsers.add_parser("losses", help="list the losses of the zoo, one line each")
    p.add_argument("--params", action="store_true", help="also list each loss's hyper-parameters and defaults")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_losses)
    p = subparsers.add_parser("cache", help="align dataset folders into the alignment cache (or show it)",
                              description="Aligns every image once with MediaPipe (resumable: run again after "
                                          "an interruption) and reports failures by reason.")
    p.add_argument("data", nargs="+", metavar="DIR[::key=value...]", help="dataset folder(s)")
    p.add_argument("--show-failures", type=int, default=10, metavar="N", help="list the first N failed images")
    add_common_options(p, "the summary")
    p.set_defaults(handler=_cache)

