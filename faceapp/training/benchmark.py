"""The loss benchmark: one backbone, one dataset, one budget, every loss of the zoo; then each model is
scored once on test protocols with the same code as ``faceapp eval``; the table is written as Markdown
and JSON (like the loss/accuracy tables of the deep face recognition surveys).

    from faceapp.core.progress import run_to_completion
    from faceapp.data import DatasetSpec
    from faceapp.training import TrainConfig
    from faceapp.training.benchmark import BenchmarkConfig, EvalProtocol, benchmark_losses
    base = TrainConfig(data=[DatasetSpec("../shared/datasets/celeba_subset")], backbone="resnet9", epochs=8)
    result = run_to_completion(benchmark_losses(BenchmarkConfig(
        base=base, out="runs/losses", losses=["arcface", "triplet"],
        protocols=[EvalProtocol("cfp", "../shared/datasets/cfp", protocol=p) for p in ("FF", "FP")])), print)
    print(result.markdown)

Fairness: the budget (``epochs`` of the training images, ``max_steps`` of ``batch_size`` images, and/or
``time_budget_min``, converted once into images through a short measured calibration run) becomes one
number of *images* every loss sees; each loss trains ``ceil(images / images per batch)`` steps of its own
natural sampler (shuffled batches for classifier losses, P x K for pair and triplet losses) with the same
schedule spread over those steps. Validation and best-epoch selection use a hold-out of the training
identities (or nothing: the last epoch is exported), never the test protocols, which are scored once,
after training.

Output folder: ``plan.json`` (resolved base settings and budget, checked on every rerun), per loss
``<loss>/model`` (model folder), ``<loss>/run`` (checkpoints, history) and ``<loss>/result.json``, and
``results.json`` + ``results.md`` rewritten after each loss. A rerun skips finished losses (a failed
one too, unless ``retry_failed``) and resumes an interrupted one from its last checkpoint; one loss
failing (e.g. diverging) is recorded in the table and the others still run.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, TypeVar

import numpy as np
import torch

from faceapp.core.errors import CancelledError, DatasetError, IncompatibleError
from faceapp.core.progress import CancelToken, EtaClock, Job, Progress
from faceapp.embedding.embedder import resolve_device
from faceapp.embedding.speed import loadavg, torch_threads
from faceapp.evaluation.protocols import PairProtocol, read_protocol
from faceapp.nn.losses import LOSSES, loss_class, resolve_hparams
from faceapp.nn.losses.base import LossConfigError
from faceapp.training.config import AugmentConfig, TrainConfig
from faceapp.data.evaluate import align_protocol, evaluate_protocol
from faceapp.training.loop import TrainingDivergedError, _check_leak, _git_commit, _Run, sampler_kind, train
from faceapp.training.samplers import make_sampler

R = TypeVar("R")

FORMAT = "faceapp-loss-benchmark/1"
#: display and run order of ``losses=["all"]``: the families of docs/losses.md; losses registered later follow
FAMILY_ORDER = ("softmax", "modified_softmax", "l2_softmax", "sphereface", "cosface", "arcface", "center", "ring",
                "contrastive", "double_margin_contrastive", "deepid2", "siamese", "triplet")
#: TrainConfig settings a single loss may change (``loss_settings``); anything else would change the comparison
LOSS_SETTINGS = ("lr", "optimizer", "momentum", "weight_decay", "schedule", "warmup_epochs", "min_lr", "step_gamma",
                 "grad_clip", "sampler", "pk_k", "precision")
#: settings that change speed or bookkeeping, not results: a rerun may change them
_RUNTIME = ("name", "out", "run_dir", "cache_dir", "resume", "threads", "device", "log_every", "checkpoint_every",
            "keep_checkpoints", "data_on_device")
FAILURE_POLICIES = ("wrong", "reject")
TAR_KEY = "0.001"


@dataclass
class EvalProtocol:
    """A test protocol: CFP (``pairs`` = the cfp folder, ``protocol`` FF or FP) or an LFW-format pairs file
    (``root`` = its image folder, default the file's folder); ``folds`` [] = all."""

    format: str
    pairs: str
    protocol: str = "FF"
    root: str = ""
    folds: list[int] = field(default_factory=list)

    def read(self) -> PairProtocol:
        """The protocol's pairs (files checked)."""
        return read_protocol(self.format, self.pairs, self.root or None, cfp_protocol=self.protocol,
                             folds=self.folds or None)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "pairs": self.pairs, "protocol": self.protocol if self.format == "cfp" else "",
                "root": self.root, "folds": list(self.folds)}


@dataclass
class BenchmarkConfig:
    """Everything one sweep depends on.

    base: the shared TrainConfig (data, backbone, embedding size, batch, optimiser, schedule, augmentation,
    seed, hold-out validation, threads, device); its ``loss``/``loss_params`` only matter when that loss is
    in the sweep (the params then apply to it). losses: names, or ["all"]. loss_params: per-loss
    hyper-parameters ``{"arcface": {"s": 32}}``. loss_settings: per-loss training settings among
    ``LOSS_SETTINGS`` (e.g. ``{"triplet": {"lr": 0.05}}``), shown in the table's notes. Budget (at least one,
    the smallest wins): ``epochs`` (passes over the training images), ``max_steps`` (steps of
    ``base.batch_size`` images), ``time_budget_min`` (minutes of training per loss, converted once into
    images from ``calibration_steps`` measured steps).
    """

    base: TrainConfig
    out: str
    protocols: list[EvalProtocol]
    losses: list[str] = field(default_factory=lambda: ["all"])
    loss_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    loss_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    epochs: float = 0.0
    max_steps: int = 0
    time_budget_min: float = 0.0
    calibration_steps: int = 8
    flip_tta: bool = False
    failure_policy: str = "wrong"
    retry_failed: bool = False
    command: str = ""

    def budget_request(self) -> dict[str, Any]:
        return {"epochs": float(self.epochs), "max_steps": int(self.max_steps),
                "time_budget_min": float(self.time_budget_min)}


@dataclass
class BenchmarkResult:
    """What a sweep left in its folder: the table (``results`` is results.json) and what this call did."""

    out: Path
    results: dict[str, Any]
    markdown: str
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ resolution
def resolve_losses(names: Iterable[str]) -> list[str]:
    """Loss names in the given order (``"all"`` = the whole zoo in family order), duplicates removed;
    ``LossConfigError`` naming an unknown loss and listing the known ones."""
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        if name == "all":
            zoo = [n for n in FAMILY_ORDER if n in LOSSES] + sorted(n for n in LOSSES.names() if n not in FAMILY_ORDER)
            out.extend(n for n in zoo if n not in out)
            continue
        loss_class(name)
        if name not in out:
            out.append(name)
    if not out:
        raise LossConfigError("no loss to benchmark: give loss names or 'all'")
    return out


def check_config(config: BenchmarkConfig) -> list[str]:
    """Validate everything that needs no data (fails in a second, not after the first loss); returns the
    losses to run."""
    losses = resolve_losses(config.losses)
    config.base.validate()
    for where, table in (("loss parameter", config.loss_params), ("loss setting", config.loss_settings)):
        for name in table:
            if name not in losses:
                raise LossConfigError(f"{where} for {name!r}, which is not in the benchmark ({', '.join(losses)})")
    for name, settings in config.loss_settings.items():
        for key in settings:
            if key not in LOSS_SETTINGS:
                raise DatasetError(f"loss setting {name}:{key}: not a per-loss setting; allowed: {', '.join(LOSS_SETTINGS)}")
    for name in losses:
        loss_config(config, name, steps=1, epochs=1).validate()
    if not config.protocols:
        raise DatasetError("no test protocol: give a CFP folder and/or an LFW-format pairs file to evaluate on")
    for p in config.protocols:
        if p.format not in ("cfp", "lfw"):
            raise DatasetError(f"test protocol format {p.format!r}: expected cfp or lfw")
    if config.failure_policy not in FAILURE_POLICIES:
        raise DatasetError(f"failure policy {config.failure_policy!r}: expected {' or '.join(FAILURE_POLICIES)}")
    if config.epochs < 0 or config.max_steps < 0 or config.time_budget_min < 0:
        raise DatasetError("the budget (epochs, max steps, time budget) cannot be negative")
    if not (config.epochs > 0 or config.max_steps > 0 or config.time_budget_min > 0):
        raise DatasetError("no budget: give epochs, max steps and/or a time budget per loss")
    if config.time_budget_min > 0 and config.calibration_steps < 2:
        raise DatasetError("a time budget needs at least 2 calibration steps")
    return losses


def loss_config(config: BenchmarkConfig, loss: str, *, steps: int, epochs: int) -> TrainConfig:
    """The TrainConfig of one loss of the sweep: the base + its parameters and settings, ``steps`` steps
    (``epochs`` passes of its sampler cover them), exported to ``<out>/<loss>/model``."""
    c = copy.deepcopy(config.base)
    params = dict(c.loss_params) if c.loss == loss else {}
    params.update(config.loss_params.get(loss, {}))
    c.loss, c.loss_params = loss, resolve_hparams(loss_class(loss), params, defaults=False)
    for key, value in config.loss_settings.get(loss, {}).items():
        setattr(c, key, value)
    folder = Path(config.out) / loss
    c.name = f"{Path(config.out).name}-{loss}"
    c.out, c.run_dir, c.resume = str(folder / "model"), str(folder / "run"), ""
    c.epochs, c.max_steps = int(epochs), int(steps)
    c.time_budget_s = 0.0           # the budget is the same images for every loss, never seconds of each one's own
    c.validation.flip_tta = config.flip_tta or c.validation.flip_tta
    return c


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in _RUNTIME}


def _upgraded(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded config in today's terms: ``amp`` became ``precision``, ``time_budget_s`` came later (0)."""
    config = dict(config)
    if "amp" in config and "precision" not in config:
        config["precision"] = "auto" if config.pop("amp") else "fp32"
    config.setdefault("time_budget_s", 0.0)
    return config


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_differences(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def _sampler_shape(c: TrainConfig, labels: np.ndarray) -> tuple[int, int]:
    """(images per batch, batches per epoch) of the sampler this loss's run will use."""
    sampler = make_sampler(sampler_kind(c), labels, c.batch_size, c.pk_k, c.seed)
    return int(sampler.batches(0)[0].size), len(sampler)


# ------------------------------------------------------------------------------------------ the record
def machine_info(device: str) -> dict[str, Any]:
    """CPU/GPU, threads and load the numbers were measured with."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "device": device, "gpu": gpu,
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "load_average_1m": loadavg()}


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable ({exc}); delete it to start that part again") from None


def _test_metrics(report: Any) -> dict[str, Any]:
    d = report.to_dict()
    return {k: d[k] for k in ("protocol", "n_pairs", "n_images", "n_failed_images", "n_failed_pairs", "failure_policy",
                              "accuracy", "accuracy_std", "accuracy_faces_only", "auc", "eer", "tar_at_far",
                              "folds", "optimistic", "fold_accuracies")}


def _tag(job: Job[R], tag: str) -> Job[R]:
    """The events of ``job`` with ``tag`` in front of their message (which loss they belong to)."""
    while True:
        try:
            event = next(job)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        yield replace(event, message=f"{tag}: {event.message}" if event.message else tag)


# ------------------------------------------------------------------------------------------ the sweep
class _Sweep:
    """State of one ``benchmark_losses`` call."""

    def __init__(self, config: BenchmarkConfig, cancel: CancelToken | None) -> None:
        self.config = config
        self.cancel = cancel or CancelToken()
        self.losses = check_config(config)
        self.out = Path(config.out)
        self.cache_root = Path(config.base.cache_dir) if config.base.cache_dir else None
        self.plan: dict[str, Any] = {}

    # -------------------------------------------------------------------------------- data and plan
    def prepare(self) -> Job[None]:
        """Align the training data (as the trainer will) and the test protocols, refuse test people in the
        training data, and fix the budget in images."""
        c = self.config
        val = c.base.validation
        self.protocols: list[PairProtocol] = []
        for spec in c.protocols:            # read first: a wrong path fails before minutes of alignment
            if val.pairs and Path(val.pairs).resolve() == Path(spec.pairs).resolve() and \
                    (spec.format != "cfp" or val.protocol.upper() == spec.protocol.upper()):
                raise DatasetError(f"the validation protocol {val.pairs} is also a test protocol: selecting the best "
                                   "epoch on it would tune on the test; validate on a hold-out of the training "
                                   "identities instead")
            self.protocols.append(spec.read())
        probe = _Run(loss_config(c, self.losses[0], steps=1, epochs=1), self.cancel)
        yield from _tag(probe.prepare_data(), "data")
        self.labels = probe.train_data.labels
        self.n_train, self.n_identities = len(probe.train_data), probe.train_data.num_classes
        self.validation = probe.validation.name if probe.validation is not None else "none (last epoch exported)"
        for protocol in self.protocols:
            _check_leak(protocol, probe.sets)
            yield from _tag(align_protocol(protocol, cache_root=self.cache_root, cancel=self.cancel), protocol.name)
        yield from self._plan()

    def _plan(self) -> Job[None]:
        c = self.config
        plan_path = self.out / "plan.json"
        old = _read_json(plan_path)
        base = _comparable(c.base.to_dict())
        for key in ("loss", "loss_params", "epochs", "max_steps"):   # per loss / the budget, compared below
            base.pop(key)
        request = {"base": base, "budget": c.budget_request(), "protocols": [p.to_dict() for p in c.protocols],
                   "flip_tta": c.flip_tta, "failure_policy": c.failure_policy}
        if old is not None:
            diff = _differences({k: old.get(k) for k in request}, request)
            if diff:
                raise IncompatibleError(
                    f"{self.out} holds a benchmark run with other settings ({'; '.join(diff[:6])}"
                    f"{'; ...' if len(diff) > 6 else ''}): its rows would not be comparable. Rerun with the same "
                    "settings to resume it, or give another output folder")
            self.plan = old
        else:
            images, calibration = yield from self._budget_images()
            self.plan = {"format": FORMAT, "created": _now(), **request,
                         "images_per_loss": images, "calibration": calibration,
                         "train_images": self.n_train, "train_identities": self.n_identities,
                         "validation": self.validation, "invocations": []}
        self.plan["invocations"] = list(self.plan.get("invocations", [])) + [
            {"date": _now(), "command": c.command, "machine": machine_info(resolve_device(c.base.device)),
             "git_commit": _git_commit()}]
        self.out.mkdir(parents=True, exist_ok=True)
        _write_json(plan_path, self.plan)

    def _budget_images(self) -> Job[tuple[int, dict[str, Any] | None]]:
        c = self.config
        limits = []
        if c.epochs > 0:
            limits.append(int(round(c.epochs * self.n_train)))
        if c.max_steps > 0:
            limits.append(c.max_steps * c.base.batch_size)
        calibration = None
        if c.time_budget_min > 0:
            rate, calibration = yield from self._calibrate()
            limits.append(int(c.time_budget_min * 60.0 * rate))
        return max(1, min(limits)), calibration

    def _calibrate(self) -> Job[tuple[float, dict[str, Any]]]:
        """Images/s of the real training step (first loss, ``calibration_steps`` steps, data + augmentation +
        forward/backward/update), measured once: the time budget becomes the same images for every loss."""
        c = self.config
        loss = self.losses[0]
        folder = self.out / "_calibration"
        config = loss_config(c, loss, steps=c.calibration_steps, epochs=c.calibration_steps)
        config.out, config.run_dir = str(folder / "model"), str(folder / "run")
        shutil.rmtree(folder, ignore_errors=True)
        result = yield from _tag(train(config, self.cancel), f"calibration ({loss})")
        shutil.rmtree(folder, ignore_errors=True)
        info = {"loss": loss, "steps": result.steps, "train_time_s": round(result.train_time_s, 2),
                "images_per_s": round(result.images_per_s, 2), "load_average_1m": loadavg(), "date": _now()}
        return result.images_per_s, info

    # -------------------------------------------------------------------------------- one loss
    def steps_for(self, loss: str) -> tuple[TrainConfig, int, int]:
        """The loss's config with its step budget, its images per batch, its batches per epoch."""
        c = loss_config(self.config, loss, steps=1, epochs=1)
        per_batch, per_epoch = _sampler_shape(c, self.labels)
        steps = max(1, math.ceil(int(self.plan["images_per_loss"]) / per_batch))
        return loss_config(self.config, loss, steps=steps, epochs=math.ceil(steps / per_epoch)), per_batch, per_epoch

    def run_loss(self, loss: str) -> Job[dict[str, Any]]:
        """Train (or resume) and evaluate one loss; the record of its row (status failed/diverged on error)."""
        config, per_batch, per_epoch = self.steps_for(loss)
        folder = self.out / loss
        last = Path(config.run_dir) / "last.pt"
        resumed = last.is_file()
        if resumed:
            config.resume = str(last)
        record: dict[str, Any] = {
            "loss": loss, "status": "running", "error": None,
            "loss_params": resolve_hparams(loss_class(loss), dict(config.loss_params)),
            "settings": dict(self.config.loss_settings.get(loss, {})), "backbone": config.backbone,
            "backbone_params": dict(config.backbone_params), "embedding_dim": config.embedding_dim,
            "sampler": sampler_kind(config), "images_per_batch": per_batch, "batches_per_epoch": per_epoch,
            "planned_steps": config.max_steps, "resumed": resumed, "started": _now(),
            "load_average_start": loadavg(), "config": _comparable(config.to_dict()),
            "model_dir": str(Path(loss) / "model"),
        }
        if record["sampler"] == "pk":
            record["sampler_detail"] = f"P x K = {per_batch // config.pk_k} x {config.pk_k}"
        if "miner" in record["loss_params"]:
            record["miner"] = record["loss_params"]["miner"]
        start = time.monotonic()
        try:
            result = yield from _tag(train(config, self.cancel), loss)
            card = result.card
            record.update({
                "loss_params": card["loss"]["params"], "sampler": card["training"]["sampler"],
                "steps": result.steps, "images_seen": result.steps * per_batch,
                "epochs": round(result.steps * per_batch / max(1, self.n_train), 2),
                "train_time_s": round(result.train_time_s, 1), "images_per_s": round(result.images_per_s, 1),
                "train_identities": card.get("train_identities"), "train_images": card.get("train_images"),
                "validation": card.get("metrics", {}).get("validation"), "device": card.get("device"),
                "threads": card["training"].get("threads"),
            })
            eval_start = time.monotonic()
            record["test"] = {}
            for protocol in self.protocols:
                report = yield from _tag(evaluate_protocol(
                    str(result.model_dir), protocol, flip_tta=self.config.flip_tta,
                    failure_policy=self.config.failure_policy, device=config.device, cache_root=self.cache_root,
                    cancel=self.cancel), f"{loss} test {protocol.name}")
                record["test"][protocol.name] = _test_metrics(report)
            record["eval_time_s"] = round(time.monotonic() - eval_start, 1)
            record["status"] = "done"
        except CancelledError:
            raise CancelledError(f"loss benchmark cancelled during {loss}; run the same command again to resume: "
                                 f"finished losses are kept, {loss} continues from {last}") from None
        except TrainingDivergedError as error:
            record.update(status="diverged", error=str(error))
        except Exception as error:  # noqa: BLE001 - one loss failing must not stop the sweep; recorded in the table
            record.update(status="failed", error=f"{type(error).__name__}: {error}")
        record.update(wall_time_s=round(time.monotonic() - start, 1), finished=_now(), load_average_end=loadavg())
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(folder / "result.json", record)
        return record

    def finished_record(self, loss: str) -> dict[str, Any] | None:
        """The stored record of a loss this run need not train again (None: train it)."""
        record = _read_json(self.out / loss / "result.json")
        if record is None or record.get("status") == "running":
            return None
        if record.get("status") != "done" and self.config.retry_failed:
            for part in ("run", "model"):
                shutil.rmtree(self.out / loss / part, ignore_errors=True)
            return None
        if record.get("status") == "done":
            config, _, _ = self.steps_for(loss)
            diff = _differences(_upgraded(record.get("config", {})), _comparable(config.to_dict()))
            if diff:
                raise IncompatibleError(
                    f"{self.out / loss} was trained with other settings ({'; '.join(diff[:6])}): delete that folder "
                    "to train it again with the new ones, or give another output folder")
        return record

    # -------------------------------------------------------------------------------- the table
    def collect(self) -> dict[str, Any]:
        """results.json: the plan, and every loss recorded in the folder (this sweep's order first)."""
        names = list(self.losses) + sorted(
            p.parent.name for p in self.out.glob("*/result.json") if p.parent.name not in self.losses)
        rows = [r for r in (_read_json(self.out / n / "result.json") for n in names) if r is not None]
        plan = dict(self.plan)
        return {"format": FORMAT, "updated": _now(), "command": plan["invocations"][-1]["command"],
                "git_commit": plan["invocations"][-1]["git_commit"], "machine": plan["invocations"][-1]["machine"],
                **{k: plan.get(k) for k in ("created", "base", "budget", "images_per_loss", "calibration",
                                             "train_images", "train_identities", "validation", "protocols",
                                             "flip_tta", "failure_policy", "invocations")},
                "protocol_names": [p.name for p in self.protocols], "losses": rows}

    def write_tables(self) -> tuple[dict[str, Any], str]:
        results = self.collect()
        markdown = render_markdown(results)
        _write_json(self.out / "results.json", results)
        (self.out / "results.md").write_text(markdown, encoding="utf-8")
        return results, markdown


def benchmark_losses(config: BenchmarkConfig, cancel: CancelToken | None = None) -> Job[BenchmarkResult]:
    """Run the sweep (see the module docstring); yields the trainer's and the evaluation's events, each
    message prefixed with its loss, and one ``Progress("benchmark", i, n)`` per loss."""
    sweep = _Sweep(config, cancel)
    threads = config.base.threads if config.base.threads > 0 else (os.cpu_count() or 1)
    with torch_threads(threads):
        yield from sweep.prepare()
        result = BenchmarkResult(out=sweep.out, results={}, markdown="")
        n = len(sweep.losses)
        clock = EtaClock(n)
        for i, loss in enumerate(sweep.losses):
            record = sweep.finished_record(loss)
            if record is not None:
                result.skipped.append(loss)
                yield Progress("benchmark", i + 1, n, message=f"{loss}: already {record['status']} in {sweep.out}, skipped")
                continue
            yield Progress("benchmark", i, n, message=f"{loss}: training")
            record = yield from sweep.run_loss(loss)
            (result.trained if record["status"] == "done" else result.failed).append(loss)
            sweep.write_tables()
            summary = ", ".join(f"{name} {m['accuracy'] * 100:.2f}%" for name, m in record.get("test", {}).items())
            yield Progress("benchmark", i + 1, n, eta_s=clock.eta(i + 1),
                           message=f"{loss}: {record['status']}" + (f" ({summary})" if summary else "")
                           + (f": {record['error']}" if record.get("error") else ""))
        result.results, result.markdown = sweep.write_tables()
    return result


# ------------------------------------------------------------------------------------------ Markdown
def _pct(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}"


def _minutes(seconds: Any) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _row(r: dict[str, Any], protocols: list[str]) -> list[str]:
    sampler = r.get("sampler", "-")
    if r.get("sampler_detail"):
        sampler += f" ({r['sampler_detail']}" + (f", {r['miner']}" if r.get("miner") else "") + ")"
    val = r.get("validation") or {}
    cells = [f"`{r['loss']}`", str(r.get("embedding_dim", "-")), sampler, str(r.get("epochs", "-")),
             str(r.get("steps", "-")), _minutes(r.get("train_time_s")), str(r.get("images_per_s", "-")),
             _pct(val.get("accuracy")) + (f" (ep. {val['epoch']})" if val.get("epoch") else "")]
    failed = []
    for name in protocols:
        m = (r.get("test") or {}).get(name)
        if m is None:
            cells += ["-", "-", "-"]
            continue
        cells += [f"{_pct(m['accuracy'])} ± {_pct(m['accuracy_std'])}", _pct(m["eer"]),
                  f"{m['tar_at_far'].get(TAR_KEY, float('nan')):.3f}"]
        failed.append(str(m["n_failed_pairs"]))
    cells.append(" / ".join(failed) if failed else "-")
    notes = []
    if r.get("status") != "done":
        notes.append(f"**{r.get('status', 'failed').upper()}**: {(r.get('error') or '')[:200]}")
    notes += [f"{k}={v}" for k, v in sorted((r.get("settings") or {}).items())]
    params = ", ".join(f"{k}={v}" for k, v in sorted((r.get("loss_params") or {}).items()) if k != "miner")
    if params:
        notes.append(params)
    cells.append("; ".join(notes) if notes else "")
    return cells


def render_markdown(results: dict[str, Any]) -> str:
    """The results table with its command, budget, data, protocols and machine, as Markdown."""
    protocols: list[str] = list(results.get("protocol_names") or [])
    base = results.get("base") or {}
    budget = results.get("budget") or {}
    machine = results.get("machine") or {}
    header = ["loss", "dim", "sampler", "epochs", "steps", "train time", "images/s", "hold-out acc %"]
    for name in protocols:
        header += [f"{name} acc % ± std", f"{name} EER %", f"{name} TAR@FAR=1e-3"]
    header += ["failed pairs" + (f" ({' / '.join(protocols)})" if len(protocols) > 1 else ""), "notes"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_row(r, protocols)) + " |" for r in results.get("losses", [])]
    asked = [f"{budget['epochs']:g} epochs" if budget.get("epochs") else "",
             f"{budget['max_steps']} steps" if budget.get("max_steps") else "",
             f"{budget['time_budget_min']:g} min of training" if budget.get("time_budget_min") else ""]
    cal = results.get("calibration")
    data = ", ".join(f"`{d.get('path')}`" + (f" ({d.get('identities')})" if d.get("identities") else "")
                     for d in base.get("data", []))
    bb = base.get("backbone", "?") + (f" {base.get('backbone_params')}" if base.get("backbone_params") else "")
    out = [
        "# Loss benchmark", "",
        f"Command: `{results.get('command') or '(Python API)'}`", "",
        f"- **Budget**: {results.get('images_per_loss'):,} images per loss (asked: "
        f"{', '.join(a for a in asked if a)}; the smallest applies"
        + (f"; time converted at {cal['images_per_s']} images/s measured over {cal['steps']} steps of {cal['loss']}"
           if cal else "") + "). Each loss trains ceil(images / batch) steps of its own sampler.",
        f"- **Data**: {data}: {results.get('train_images'):,} training images of {results.get('train_identities')} "
        f"identities; validation / best epoch: {results.get('validation')}.",
        f"- **Model and schedule**: {bb} -> {base.get('embedding_dim')}-d, input {base.get('input_size')}, batch "
        f"{base.get('batch_size')} (P x K: K = {base.get('pk_k')}), {base.get('optimizer')} lr {base.get('lr')} "
        f"momentum {base.get('momentum')} weight decay {base.get('weight_decay')}, {base.get('schedule')} schedule, "
        f"warm-up {base.get('warmup_epochs')} epoch(s), gradient clip {base.get('grad_clip')}, seed {base.get('seed')}, "
        f"augmentation {_augment_text(base.get('augment') or {})}.",
        f"- **Test** (scored once, after training, with `faceapp eval`'s code): "
        + ", ".join(protocols) + f"; k-fold accuracy with each fold's threshold from the other folds; failure "
        f"policy `{results.get('failure_policy')}` (pairs with an image where no face was found count as errors)"
        + (", flip-TTA" if results.get("flip_tta") else "") + ".",
        f"- **Machine**: {machine.get('cpu')} ({machine.get('cpu_count')} cores), device {machine.get('device')}"
        + (f" ({machine['gpu']})" if machine.get("gpu") else "")
        + f", torch {machine.get('torch')} with {machine.get('torch_threads')} thread(s), 1-min load average "
        f"{machine.get('load_average_1m')} at the start; git commit `{(results.get('git_commit') or 'unknown')[:10]}`; "
        f"started {results.get('created')}, updated {results.get('updated')}.",
        "",
        *lines,
        "",
        "Columns: epochs = images seen / training images; train time excludes validation and evaluation; "
        "hold-out acc = best-epoch accuracy on the hold-out pairs (it picks the exported epoch); EER and "
        "TAR@FAR=1e-3 on all pairs of the protocol; notes list per-loss training settings and loss "
        "hyper-parameters.",
        "",
    ]
    return "\n".join(out)


def _augment_text(augment: dict[str, Any]) -> str:
    if augment == asdict(AugmentConfig()):
        return "the defaults of docs/training.md"
    if augment == asdict(AugmentConfig.off()):
        return "off"
    return ", ".join(f"{k}={v}" for k, v in augment.items())


def load_results(folder: str | Path) -> dict[str, Any]:
    """results.json of a benchmark folder (``DatasetError`` when it is missing or unreadable)."""
    data = _read_json(Path(folder) / "results.json")
    if data is None:
        raise DatasetError(f"{folder}: no results.json (not a loss benchmark folder, or nothing finished yet)")
    return data
