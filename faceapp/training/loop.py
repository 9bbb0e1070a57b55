"""The training loop, written once as a generator of ``Progress`` events with a cancel flag.

    from faceapp.core.progress import run_to_completion
    from faceapp.data import DatasetSpec
    from faceapp.training import TrainConfig, train
    result = run_to_completion(train(TrainConfig(data=[DatasetSpec("../shared/datasets/att_faces")], ...)))

Stages of the events (``Progress.stage``): "align" (alignment caches, first use only), "prepare",
"train" (every ``log_every`` steps: epoch, step, loss and its terms, lr, images/s, ETA, train accuracy
for classifier losses), "validate" (embedding progress, then one event with the epoch's metrics),
"checkpoint", "export". Cancelling saves ``last.pt`` (resume from it: that is "pause") and raises
``CancelledError``. The result is a ``TrainResult``.

The same loop serves the CPU and a data-centre GPU (docs/training.md, "Training on a GPU"): packed crops as a
dataset (``faceapp.data.pack``), ``precision`` and ``data_on_device`` (``faceapp.training.accel``), and a
schedule fitted to ``time_budget_s`` (``faceapp.training.budget``).
"""

from __future__ import annotations

import json
import math
import os
import logging
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from faceapp.core.errors import (CancelledError, DatasetError, ExitCode, FaceAppError, IncompatibleError, InputFileError,
                                 NotFoundError)
from faceapp.core.paths import REPO_DIR, data_dir, user_models_dir
from faceapp.core.progress import CancelToken, EtaClock, Job, Progress
from faceapp.data.cache import AlignedSet, AlignSettings, align_images
from faceapp.data.datasets import DatasetListing, scan_dataset
from faceapp.data.evaluate import embed_aligned, protocol_items, score_protocol
from faceapp.data.labelled import LabelledCrops, assemble, holdout_pairs, holdout_split
from faceapp.data.pack import PackListing, PackedSet, is_pack, load_pack, scan_pack
from faceapp.embedding.embedder import resolve_device
from faceapp.embedding.model_folder import ModelConfig, build_backbone, normalize_bgr, read_card, save_model
from faceapp.embedding.pretrained import StartingPoint, resolve_start, start_architecture
from faceapp.evaluation.protocols import PairProtocol, read_protocol
from faceapp.evaluation.verification import VerificationReport, pair_scores, verification_report
from faceapp.nn.backbones import BACKBONES
from faceapp.nn.losses import FaceLoss, create_loss, loss_class, resolve_hparams
from faceapp.nn.losses.distill import Distillation
from faceapp.training.accel import autocast, needs_grad_scaler, resolve_data_on_device, resolve_precision
from faceapp.training.augment import Augmenter
from faceapp.training.budget import BudgetSchedule
from faceapp.training.checkpoint import check_compatible, load_checkpoint, save_checkpoint
from faceapp.training.config import TrainConfig
from faceapp.training.distributed import (DistContext, RankBatches, close_process_group, context_from_env,
                                          init_process_group, wrap)
from faceapp.training.embed import crops_to_tensor, make_embed_fn
from faceapp.training.finetune import class_centroids, cosine_row_norm, init_head_from_centroids, set_batchnorm_eval
from faceapp.training.samplers import make_sampler

log = logging.getLogger(__name__)
from faceapp.training.teacher_cache import teacher_embeddings
from faceapp.training.teachers import Teacher, TorchTeacher, resolve_teacher
from faceapp.training.torch_augment import TorchAugmenter


class TrainingDivergedError(FaceAppError):
    """The loss became NaN or infinite: the settings (learning rate, margins) cannot be trained."""

    exit_code = ExitCode.DATASET


@dataclass
class TrainResult:
    """What a finished run produced."""

    model_dir: Path
    run_dir: Path
    steps: int
    epochs: int
    train_time_s: float
    images_per_s: float
    best: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    card: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Validation:
    """What each epoch is validated on: a pairs protocol with its aligned images, or hold-out pairs."""

    name: str
    crops: AlignedSet | LabelledCrops
    protocol: PairProtocol | None = None
    pairs: np.ndarray | None = None
    same: np.ndarray | None = None
    folds: np.ndarray | None = None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_DIR, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def sampler_kind(config: TrainConfig) -> str:
    """The sampler a run uses: the configured one, or for "auto" P x K when the loss needs pairs or triplets."""
    if config.sampler != "auto":
        return config.sampler
    return "pk" if loss_class(config.loss).requires_pk_sampler else "shuffle"


def lr_factor(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """The learning-rate multiplier at ``step``: linear warm-up, then cosine (to ``min_lr``), step or constant."""
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    warmup = min(warmup, max(0, total_steps - 1))
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if config.schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total_steps - warmup)
    if config.schedule == "cosine":
        return config.min_lr + (1.0 - config.min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    passed = sum(1 for m in config.step_milestones if step >= m * total_steps)
    return config.step_gamma ** passed


def _optimizer(config: TrainConfig, modules: list[tuple[nn.Module, float]]) -> torch.optim.Optimizer:
    """Weight decay on weight matrices and kernels only (not on biases, BN, PReLU or scalars).

    ``modules`` pairs each module with its learning-rate multiplier (``lr_mult`` of its groups: the backbone
    gets ``backbone_lr_mult`` when fine-tuning, the loss's head 1); ``train_step`` applies it every step.
    """
    groups = []
    for module, mult in modules:
        decay, no_decay = [], []
        for p in module.parameters():
            if p.requires_grad:
                (decay if p.ndim > 1 else no_decay).append(p)
        groups += [{"params": decay, "weight_decay": config.weight_decay, "lr_mult": mult},
                   {"params": no_decay, "weight_decay": 0.0, "lr_mult": mult}]
    groups = [g for g in groups if g["params"]]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)


def _arch(config: TrainConfig, loss: FaceLoss, num_classes: int) -> dict[str, Any]:
    params = dict(config.backbone_params)
    params["input_size"] = config.input_size
    return {"backbone": config.backbone, "backbone_params": params, "embedding_dim": config.embedding_dim,
            "loss": config.loss, "loss_params": dict(loss.hparams), "num_classes": num_classes}


def _check_leak(protocol: PairProtocol, sets: list[AlignedSet]) -> None:
    """Refuse to validate on people the model trains on (same identity folder in both)."""
    train_dirs = {p.parent for s in sets for p in s.paths}
    train_dirs |= {d.parent for d in train_dirs}
    shared = sorted({p.parent for p in protocol.images if p.parent in train_dirs or p.parent.parent in train_dirs})
    if shared:
        raise DatasetError(
            f"the validation protocol {protocol.name} uses {len(shared)} identity folders that are also in the "
            f"training data (e.g. {shared[0]}): a model must not be validated on people it trains on. Use "
            "validation folds whose people are not trained on (CFP: --val-folds 9,10 with identities 001-400) "
            "or an identity filter on the data")


class _Run:
    """State of one training run; ``train`` drives it."""

    def __init__(self, config: TrainConfig, cancel: CancelToken | None, dist: DistContext = DistContext()) -> None:
        self.config = config.validate()
        self.cancel = cancel or CancelToken()
        self.dist = dist
        if dist.enabled and config.time_budget_s > 0:
            raise IncompatibleError("--time-budget cannot be combined with --nproc (each process would fit its own "
                                    "schedule); give --epochs or --max-steps")
        self.run_dir = Path(config.run_dir) if config.run_dir else data_dir() / "runs" / config.name
        self.out_dir = Path(config.out) if config.out else user_models_dir() / config.name
        self.device = dist.device(resolve_device(config.device))
        self.precision = resolve_precision(config.precision, self.device)      # "fp32", "fp16" or "bf16"
        self.settings = AlignSettings()
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}
        self.train_time = 0.0
        self.start_point: StartingPoint | None = None      # the resolved --init (preflight), used by build
        self.head_init_done = "random"                     # what init_head did: "centroids" or "random"
        self.teacher_lineage: dict[str, Any] | None = None
        self.images_seen = 0
        self.last_metrics: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------------- data
    def preflight(self) -> list[DatasetListing | PackListing]:
        """Every check that needs no alignment, so a typo fails in a second, not after minutes of work."""
        c = self.config
        if not c.data:
            raise DatasetError("no training data given (add a dataset folder)")
        resolve_hparams(loss_class(c.loss), dict(c.loss_params))
        if c.backbone not in BACKBONES:
            raise NotFoundError(f"unknown backbone {c.backbone!r}; known backbones: {', '.join(BACKBONES.names())}")
        if c.resume and not Path(c.resume).is_file():
            raise InputFileError(f"checkpoint {c.resume} does not exist", path=c.resume)
        if c.init:
            check_start_fits(c)
            self.start_point = resolve_start(c.init)      # file found, SHA-256 checked, weights read: before any work
        self.teacher: Teacher | None = None
        if c.teacher:       # file found, shapes checked, optional packages present, weights valid: before any work
            self.teacher = resolve_teacher(c.teacher, self.device)
            # the settings checked now; build() makes the one that trains, after seeding (its projection's init)
            Distillation(c.embedding_dim, self.teacher.embedding_dim, c.distill_weights(), c.distill_params)
        v = c.validation
        self.protocol = (read_protocol(v.format, v.pairs, v.root or None, cfp_protocol=v.protocol, folds=v.folds or None)
                         if v.pairs else None)
        listings = [scan_pack(spec) if is_pack(spec) else scan_dataset(spec) for spec in c.data]
        names = [listing.name for listing in listings]
        for name in names:
            if names.count(name) > 1:
                raise DatasetError(f"two training datasets are named {name!r}: their identities would mix; give "
                                   "one a different name (--data DIR::name=other)")
        namespaces = [listing.namespaces if isinstance(listing, PackListing) else {listing.name} for listing in listings]
        for i, mine in enumerate(namespaces):       # a pack keeps its packed names: they must not meet another's
            for other in namespaces[i + 1:]:
                if mine & other:
                    raise DatasetError(f"the training data holds the identities of {sorted(mine & other)[0]!r} twice "
                                       "(a pack and a folder, or two packs, of the same dataset): they would mix; "
                                       "give each dataset once")
        return listings

    def prepare_data(self) -> Job[None]:
        c = self.config
        listings = self.preflight()
        cache_root = Path(c.cache_dir) if c.cache_dir else None
        sets: list[AlignedSet | PackedSet] = []
        for spec, listing in zip(c.data, listings):
            if isinstance(listing, PackListing):
                aligned = yield from load_pack(listing, cancel=self.cancel)
            else:
                aligned = yield from align_images(listing.items, name=listing.name,
                                                  settings=AlignSettings(pad=spec.pad), cache_root=cache_root,
                                                  cancel=self.cancel)
            sets.append(aligned)
            yield Progress("prepare", message=aligned.describe())
        data = assemble(sets, c.min_images)
        self.sets = sets
        self.validation: _Validation | None = None
        v = c.validation
        protocol = self.protocol
        if protocol is not None:
            _check_leak(protocol, sets)
            aligned = yield from align_images(protocol_items(protocol), name=protocol.name, settings=self.settings,
                                              cache_root=cache_root, cancel=self.cancel)
            self.validation = _Validation(protocol.name, aligned, protocol=protocol)
            self.train_data = data
        else:
            self.train_data, held = holdout_split(data, v.holdout, c.seed)
            if held is not None:
                pairs, same, folds = holdout_pairs(held.labels, v.holdout_pairs, c.seed)
                self.validation = _Validation(f"hold-out ({held.num_classes} identities)", held, pairs=pairs,
                                              same=same, folds=folds)
        self.data_card = [{"name": s.name, **data.per_dataset[s.name], "path": str(listing.root),
                           "layout": listing.layout, "identity_filter": spec.identities,
                           **({"exclude": spec.exclude, "packed": listing.packed}
                              if isinstance(listing, PackListing) else {})}
                          for s, spec, listing in zip(sets, c.data, listings)]
        msg = (f"{len(self.train_data)} training images of {self.train_data.num_classes} identities; validation: "
               f"{self.validation.name if self.validation else 'none'}")
        yield Progress("prepare", message=msg)

    def prepare_teacher(self) -> Job[None]:
        """The teacher's embeddings of the clean training crops (computed once, then from the teacher cache), or
        nothing to prepare when a torch teacher embeds each augmented batch on the device as the student sees it."""
        c = self.config
        self.teacher_emb: torch.Tensor | None = None
        self.teacher_online = False
        if self.teacher is None:
            return
        if isinstance(self.teacher, TorchTeacher) and self.augments_on_device() and Augmenter(c.augment).enabled:
            self.teacher_online = True
            yield Progress("teacher", message=f"{self.teacher.name}: embeds each augmented batch on {self.device}")
            return
        root = Path(c.cache_dir) / "teachers" if c.cache_dir else None
        emb = yield from teacher_embeddings(self.teacher, self.train_data.table, cache_root=root, cancel=self.cancel)
        self.teacher_emb = torch.from_numpy(emb).to(self.device)
        self.teacher.close()                    # its vectors are all here now

    # ------------------------------------------------------------------------------------------ model
    def build(self) -> None:
        c = self.config
        torch.manual_seed(c.seed)
        if self.start_point is not None:
            self.model_config = ModelConfig(**{**vars(self.start_point.config), "name": c.name})
            self.net = self.start_point.build().to(self.device)
        else:
            self.model_config = ModelConfig(name=c.name, backbone=c.backbone, embedding_dim=c.embedding_dim,
                                            input_size=c.input_size, backbone_kwargs=dict(c.backbone_params))
            self.net = build_backbone(self.model_config, source="training config").to(self.device)
        self.memory_format = torch.channels_last if c.channels_last else torch.contiguous_format
        self.net = self.net.to(memory_format=self.memory_format)
        if hasattr(self.net, "prefer_channels_last"):        # else the backbone's own CPU layout would override it
            self.net.prefer_channels_last = c.channels_last
        self.loss = create_loss(c.loss, embedding_dim=c.embedding_dim, num_classes=self.train_data.num_classes,
                                **c.loss_params).to(self.device)
        kind = sampler_kind(c)
        self.sampler_kind = kind
        self.sampler = make_sampler(kind, self.train_data.labels, c.batch_size, c.pk_k, c.seed)
        if self.dist.enabled:
            self.sampler = RankBatches(self.sampler, self.dist.rank, self.dist.world_size, c.batch_size)
        self.steps_per_epoch = len(self.sampler)
        total = c.epochs * self.steps_per_epoch
        self.total_steps = min(total, c.max_steps) if c.max_steps > 0 else total
        self.distill: Distillation | None = None
        if self.teacher is not None:
            self.distill = Distillation(c.embedding_dim, self.teacher.embedding_dim, c.distill_weights(),
                                        c.distill_params).to(self.device)
            self.teacher_lineage = {**self.teacher.lineage, "weights": c.distill_weights(),
                                    "params": self.distill.hparams,
                                    "targets": "augmented batch, on the fly" if self.teacher_online else "clean crops, cached"}
        self.optimizer = _optimizer(c, [(self.net, c.backbone_lr_mult), (self.loss, 1.0)]
                                    + ([(self.distill, 1.0)] if self.distill is not None else []))
        self.scaler = torch.amp.GradScaler(torch.device(self.device).type, enabled=needs_grad_scaler(self.precision))
        self.augment = Augmenter(c.augment)
        self.device_augment = TorchAugmenter(c.augment) if self.augments_on_device() and self.augment.enabled else None
        self.device_images: torch.Tensor | None = None
        cpu_augment = self.augment.enabled and self.device_augment is None
        if resolve_data_on_device(c.data_on_device, self.device, cpu_augment, len(self.train_data) * 112 * 112 * 3):
            self.device_images = self._upload_crops()
        self.budget = BudgetSchedule(c.time_budget_s, self.total_steps) if c.time_budget_s > 0 else None
        self.arch = _arch(c, self.loss, self.train_data.num_classes)
        self.step, self.epoch, self.batch = 0, 0, 0
        # what the step calls: the modules themselves, or DistributedDataParallel around them (gradients averaged)
        self.net_step = self.loss_step = self.distill_step = None

    def distribute(self) -> None:
        """Wrap the trained modules for the step (after ``resume``/``init_head``, so every rank starts equal)."""
        self.net_step = wrap(self.net, self.dist, self.device)
        self.loss_step = wrap(self.loss, self.dist, self.device)
        self.distill_step = wrap(self.distill, self.dist, self.device) if self.distill is not None else None

    def resume(self, path: str) -> None:
        state = load_checkpoint(path)
        check_compatible(state, self.arch, self.train_data.identities, path)
        saved = state.get("distill_arch") or None
        if saved != self.distill_arch():
            raise IncompatibleError(f"cannot resume from {path}: it was distilled differently (checkpoint: {saved}, "
                                    f"this run: {self.distill_arch()}); use the same --teacher and non-zero "
                                    "distillation weights, or start a new run", path=str(path))
        self.net.load_state_dict(state["model"])
        self.loss.load_state_dict(state["loss"])
        if self.distill is not None:
            self.distill.load_state_dict(state["distill"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.batch = int(state["step"]), int(state["epoch"]), int(state["batch"])
        if self.budget is not None and state.get("budget"):         # the fitted schedule goes on where it was
            self.budget.load_state_dict(state["budget"])
            self.total_steps = min(self.budget.cap, int(state.get("total_steps") or self.total_steps))
        self.best = dict(state.get("best") or {})
        self.history = list(state.get("history") or [])
        self.train_time = float(state.get("train_time_s", 0.0))
        self.images_seen = int(state.get("images_seen", 0))
        self.last_metrics = dict(state.get("last_metrics") or {})
        rng = state.get("rng") or {}
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and self.device.startswith("cuda"):
            torch.cuda.set_rng_state_all(rng["cuda"])

    def checkpoint(self, path: Path) -> Path:
        """Save the run's state to ``path`` (rank 0 only: the other ranks hold the same state); returns ``path``."""
        if not self.dist.is_main:
            return path
        rng = {"torch": torch.get_rng_state()}
        if self.device.startswith("cuda"):
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return save_checkpoint(path, {
            "arch": self.arch, "identities": self.train_data.identities, "config": self.config.to_dict(),
            "model": self.net.state_dict(), "loss": self.loss.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {}, "step": self.step, "epoch": self.epoch,
            "batch": self.batch, "rng": rng, "best": self.best, "history": self.history,
            "train_time_s": self.train_time, "images_seen": self.images_seen, "last_metrics": self.last_metrics,
            "distill_arch": self.distill_arch(), "distill": self.distill.state_dict() if self.distill is not None else {},
            "total_steps": self.total_steps, "budget": self.budget.state_dict() if self.budget is not None else {},
        })

    def distill_arch(self) -> dict[str, Any] | None:
        """What a checkpoint's distillation state depends on: the teacher and the terms (None without one)."""
        if self.distill is None or self.teacher is None:
            return None
        return {"teacher": self.teacher.id, "terms": sorted(self.distill.terms)}

    def _periodic_checkpoint(self) -> Path:
        folder = self.run_dir / "checkpoints"
        path = self.checkpoint(folder / f"step-{self.step:07d}.pt")
        if not self.dist.is_main:
            return path
        old = sorted(folder.glob("step-*.pt"))
        for stale in old[: max(0, len(old) - max(1, self.config.keep_checkpoints))]:
            stale.unlink(missing_ok=True)
        return path

    # ------------------------------------------------------------------------------------------- step
    def train_step(self, idx: np.ndarray) -> dict[str, float]:
        c = self.config
        if self.device_augment is not None or self.device_images is not None:
            x = self._device_batch(idx)
        else:
            rng = np.random.default_rng([c.seed, self.step, 3])
            batch = self.augment(self.train_data.table.crops(idx), rng)
            x = crops_to_tensor(batch, self.model_config).to(self.device, non_blocking=True)
        x = x.contiguous(memory_format=self.memory_format)
        y = torch.from_numpy(self.train_data.labels[idx]).to(self.device)
        lr = c.lr * lr_factor(c, self.step, self.total_steps, self.steps_per_epoch)
        frozen = self.backbone_frozen()
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        self.loss.on_step(self.step)
        self.net.train(not frozen)
        if c.freeze_bn and not frozen:
            set_batchnorm_eval(self.net)
        self.loss.train()
        with autocast(self.device, self.precision), torch.set_grad_enabled(not frozen):
            emb = (self.net_step or self.net)(x)
        emb = emb.float()   # the loss (margins, the classifier's cosines) in float32 whatever the backbone ran in
        if frozen:          # head-only epochs: no backward through the backbone (its weights and BN stats stay)
            emb = emb.detach()
        value = (self.loss_step or self.loss)(emb, y)
        distill_terms: dict[str, torch.Tensor] = {}
        if self.distill is not None:
            main = value
            extra, distill_terms = (self.distill_step or self.distill)(emb, self.teacher_batch(idx))
            value = value + extra
            distill_terms["main"] = main.detach()
        if not torch.isfinite(value):
            raise TrainingDivergedError(f"the loss became {value.item()} at step {self.step} (epoch {self.epoch + 1}): "
                                        "lower the learning rate (--lr) or keep gradient clipping on")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(value).backward()
        if c.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], c.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        out = {"loss": self.dist.mean(float(value.item())), "lr": lr}
        out.update({f"loss/{k}": v for k, v in self.loss.last_terms.items()})
        out.update({f"loss/{k}": float(v.item()) for k, v in distill_terms.items()})
        logits = getattr(self.loss, "logits", None)
        if callable(logits):
            with torch.no_grad():
                out["train_acc"] = float((logits(emb.detach()).argmax(1) == y).float().mean().item())
        return out

    def teacher_batch(self, idx: np.ndarray) -> torch.Tensor:
        """The teacher's unit vectors for a batch: from the cached clean-crop embeddings, or computed now from the
        augmented batch the student saw (``teacher_online``)."""
        if self.teacher_online:
            assert isinstance(self.teacher, TorchTeacher)
            return self.teacher.embed_tensor(self.augmented_bgr)
        assert self.teacher_emb is not None
        return self.teacher_emb[torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(self.device)]

    def augments_on_device(self) -> bool:
        """Where ``augment_on`` puts augmentation: on the device for "device", and for "auto" when it is CUDA."""
        c = self.config
        return c.augment_on == "device" or (c.augment_on == "auto" and self.device.startswith("cuda"))

    def backbone_frozen(self) -> bool:
        """True during the first ``freeze_epochs`` epochs: only the loss's parameters (the head) train."""
        return self.step < int(round(self.config.freeze_epochs * self.steps_per_epoch))

    def init_head(self) -> Job[None]:
        """Start the classifier head at the class centroids of the starting network's embeddings (``head_init``)."""
        c = self.config
        wanted = c.head_init == "centroids" or (c.head_init == "auto" and self.start_point is not None)
        if not wanted or not (hasattr(self.loss, "head") or hasattr(self.loss, "centers")):
            self.head_init_done = "random"
            return
        self.net.eval()
        embed = make_embed_fn(self.net, self.model_config, self.device, flip_tta=False)
        centroids = yield from class_centroids(embed, self.train_data.table.crops, self.train_data.labels,
                                               self.train_data.num_classes, batch_size=c.validation.batch_size,
                                               cancel=self.cancel)
        scale = float(getattr(self.loss, "hparams", {}).get("s", 64.0))
        norm = cosine_row_norm(c.lr, scale)
        self.head_init_done = ("centroids" if init_head_from_centroids(self.loss, centroids, row_norm=norm)
                               else "random")
        self.net.train()
        yield Progress("prepare", message=f"classifier head initialised from {self.train_data.num_classes} class centroids")

    def _upload_crops(self, chunk: int = 4096) -> torch.Tensor:
        """The whole training set as one uint8 (N, 112, 112, 3) tensor on the device (``data_on_device``)."""
        n = len(self.train_data)
        images = torch.empty((n, 112, 112, 3), dtype=torch.uint8, device=self.device)
        for start in range(0, n, chunk):
            idx = np.arange(start, min(n, start + chunk))
            images[start:start + idx.size] = torch.from_numpy(self.train_data.table.crops(idx)).to(self.device)
        return images

    def _device_batch(self, idx: np.ndarray) -> torch.Tensor:
        """The batch built where it trains: uint8 crops indexed in the device copy of the training set
        (``data_on_device``) or sent there, augmented there (``augment_on``: TorchAugmenter with a generator
        seeded by (seed, step), so a resumed run sees the same images), then the model's input."""
        if self.device_images is not None:
            crops = self.device_images[torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(self.device)]
        else:
            crops = torch.from_numpy(self.train_data.table.crops(idx)).to(self.device, non_blocking=True)
        x = crops.permute(0, 3, 1, 2).float()
        if self.device_augment is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(int(np.random.SeedSequence([self.config.seed, self.step, 3]).generate_state(1)[0]))
            x = self.device_augment(x, generator)
        self.augmented_bgr = x                  # what an on-the-fly teacher embeds
        size = self.model_config.input_size
        if x.shape[-1] != size:
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="area")    # as preprocess's INTER_AREA
        return normalize_bgr(x, self.model_config)

    # ------------------------------------------------------------------------------------- validation
    def validate(self) -> Job[VerificationReport | None]:
        if self.validation is None or not self.dist.is_main:      # rank 0 validates; the others go on
            return None
        v = self.validation
        self.net.eval()
        embed = make_embed_fn(self.net, self.model_config, self.device, flip_tta=self.config.validation.flip_tta)
        try:
            if v.protocol is not None:
                assert isinstance(v.crops, AlignedSet)
                emb = yield from embed_aligned(embed, v.crops, cancel=self.cancel, stage="validate")
                return score_protocol(emb, v.crops, v.protocol, failure_policy=self.config.validation.failure_policy)
            assert isinstance(v.crops, LabelledCrops) and v.pairs is not None
            used = np.unique(v.pairs)
            emb = np.zeros((len(v.crops), self.config.embedding_dim), dtype=np.float32)
            for start in range(0, used.size, self.config.validation.batch_size):
                self.cancel.raise_if_cancelled("validation")
                part = used[start:start + self.config.validation.batch_size]
                emb[part] = embed(v.crops.table.crops(part))
                yield Progress("validate", start + part.size, used.size, message=v.name)
            scores, valid = pair_scores(emb, v.pairs)
            return verification_report(scores, v.same, folds=v.folds, valid=valid, protocol=v.name,
                                       n_images=int(used.size))
        finally:
            self.net.train()

    def is_better(self, report: VerificationReport) -> bool:
        if not self.best:
            return True
        if self.config.validation.metric == "eer":
            return report.eer < self.best["eer"]
        return report.accuracy > self.best["accuracy"]


def training_data(config: TrainConfig, cancel: CancelToken | None = None) -> Job[tuple[LabelledCrops, list[dict[str, Any]]]]:
    """The training data exactly as ``train`` assembles it (scan, align into the cache or reuse it, label,
    hold-out split) and its data card, without training (e.g. to pack it for another machine)."""
    run = _Run(config, cancel)
    yield from run.prepare_data()
    return run.train_data, run.data_card


def train(config: TrainConfig, cancel: CancelToken | None = None) -> Job[TrainResult | None]:
    """Train, validate each epoch, checkpoint, and export the best model; see the module docstring.

    Sets torch's CPU thread count to ``config.threads`` (0 = all cores, shared by the processes of a
    distributed run) for the run and restores it after.
    Under torchrun (WORLD_SIZE > 1) it joins the process group and trains data-parallel
    (``faceapp.training.distributed``); only rank 0 writes, and the other ranks return None.
    """
    threads = torch.get_num_threads()
    ctx = context_from_env()
    torch.set_num_threads(config.threads if config.threads > 0 else max(1, (os.cpu_count() or 1) // ctx.world_size))
    try:
        run = _Run(config, cancel, ctx)
        init_process_group(ctx, run.device)
        result = yield from _train(run)
    finally:
        torch.set_num_threads(threads)
        close_process_group(ctx)
    return result


def _train(run: _Run) -> Job[TrainResult | None]:
    c = run.config
    if not run.dist.is_main:
        run.dist.barrier()                  # rank 0 builds the alignment (and teacher) caches first
    yield from run.prepare_data()
    yield from run.prepare_teacher()
    if run.dist.is_main:
        run.dist.barrier()
    run.build()
    if c.resume:
        run.resume(c.resume)
    else:
        yield from run.init_head()
    run.distribute()
    if run.dist.is_main:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        (run.run_dir / "config.json").write_text(json.dumps(c.to_dict(), indent=2))
    yield Progress("prepare", message=(
        f"{c.backbone} -> {c.embedding_dim}-d, loss {c.loss}, {run.sampler_kind} batches of {c.batch_size}, "
        f"{run.steps_per_epoch} steps/epoch, {run.total_steps} steps, device {run.device}"
        + f", {run.precision}" + (", training set on the device" if run.device_images is not None else "")
        + (f", schedule fitted to a {c.time_budget_s:g} s budget" if run.budget is not None else "")
        + (f", resumed at step {run.step}" if c.resume else "")
        + (f", distilling from {run.teacher.name} ({', '.join(f'{k} x{w:g}' for k, w in c.distill_weights().items())})"
           if run.teacher is not None else "")))

    log_path = run.run_dir / "history.jsonl" if run.dist.is_main else None      # rank 0 writes
    clock = EtaClock(run.total_steps - run.step)
    session_start = run.step
    steps_this_session = 0
    window_start, window_images = time.monotonic(), 0
    epochs = math.ceil(run.total_steps / run.steps_per_epoch)
    while run.step < run.total_steps:
        batches = run.sampler.batches(run.epoch)
        while run.batch < len(batches) and run.step < run.total_steps:
            if run.cancel.cancelled:
                path = run.checkpoint(run.run_dir / "last.pt")
                raise CancelledError(f"training cancelled at step {run.step}; resume with --resume {path}")
            t0 = time.monotonic()
            metrics = run.train_step(batches[run.batch])
            run.train_time += time.monotonic() - t0
            n = int(batches[run.batch].size)
            run.images_seen += n
            window_images += n
            run.step += 1
            run.batch += 1
            steps_this_session += 1
            run.last_metrics = metrics
            if run.budget is not None:
                fitted = run.budget.observe(run.step, run.train_time, epoch_end=run.batch >= len(batches))
                if fitted is not None and fitted != run.total_steps:
                    run.total_steps = fitted
                    epochs = math.ceil(run.total_steps / run.steps_per_epoch)
                    clock.total = run.total_steps - session_start
                    fit = run.budget.fits[-1]
                    yield Progress("prepare", message=(
                        f"time budget {c.time_budget_s:g} s: {fit['ms_per_step']:.1f} ms/step, schedule fitted to "
                        f"{fitted} steps ({fitted / run.steps_per_epoch:.1f} epochs)"))
            if run.step % c.log_every == 0 or run.step == run.total_steps:
                now = time.monotonic()
                rate = window_images / max(1e-9, now - window_start)
                window_start, window_images = now, 0
                event = {"epoch": run.epoch + 1, "epochs": epochs, "step": run.step, **metrics,
                         "images/s": round(rate, 1)}
                _append(log_path, {"stage": "train", **event})
                yield Progress("train", run.step, run.total_steps, eta_s=clock.eta(steps_this_session),
                               message=f"epoch {run.epoch + 1}/{epochs}", metrics=event)
            if c.checkpoint_every > 0 and run.step % c.checkpoint_every == 0:
                path = run._periodic_checkpoint()
                yield Progress("checkpoint", run.step, run.total_steps, message=str(path))
        epoch_done = run.batch >= len(batches)
        if epoch_done or run.step >= run.total_steps:      # validate each epoch, and after a cut-short last one
            try:
                report = yield from run.validate()
            except CancelledError:
                path = run.checkpoint(run.run_dir / "last.pt")     # resumes straight into this validation
                raise CancelledError(f"training cancelled during validation at step {run.step}; resume with "
                                     f"--resume {path}") from None
            record: dict[str, Any] = {"epoch": run.epoch + 1, "step": run.step, "loss": run.last_metrics.get("loss")}
            improved = False
            if report is not None:
                improved = run.is_better(report)
                record.update({"val_accuracy": report.accuracy, "val_accuracy_std": report.accuracy_std,
                               "val_eer": report.eer, "val_auc": report.auc,
                               **{f"val_tar@far={k}": v for k, v in report.tar_at_far.items()},
                               "val_failed_pairs": report.n_failed_pairs, "best": improved})
                if improved:
                    run.best = {"epoch": run.epoch + 1, "step": run.step, "accuracy": report.accuracy,
                                "eer": report.eer, "report": report.to_dict()}
            run.history.append(record)
            _append(log_path, {"stage": "validate", **record})
            if report is not None:
                yield Progress("validate", run.epoch + 1, epochs, message=report.protocol, metrics=record)
            if epoch_done:
                run.epoch += 1
                run.batch = 0
            run.checkpoint(run.run_dir / "last.pt")
            if improved:
                run.checkpoint(run.run_dir / "best.pt")
            yield Progress("checkpoint", run.step, run.total_steps, message=str(run.run_dir / "last.pt"))
    if not run.dist.is_main:
        return None
    result = yield from _export(run, epochs)
    return result


def check_start_fits(config: TrainConfig) -> None:
    """Refuse, before any alignment or training, a starting point whose network is not the configured one."""
    arch = start_architecture(config.init)
    wanted = (config.backbone, config.embedding_dim, config.input_size)
    found = (arch.backbone, arch.embedding_dim, arch.input_size)
    if wanted != found:
        raise IncompatibleError(
            f"starting point {config.init}: a {arch.backbone} network with {arch.embedding_dim}-d output at "
            f"{arch.input_size}x{arch.input_size}; the run is set to {config.backbone}, {config.embedding_dim}-d, "
            f"{config.input_size}x{config.input_size}. Use --backbone {arch.backbone} --embedding-dim "
            f"{arch.embedding_dim} --input-size {arch.input_size} (or leave them unset with --init)", path=config.init)


def lineage_card(run: "_Run") -> dict[str, Any]:
    """The card's lineage: starting weights, teacher, the data trained on, and what follows for benchmarks."""
    start = run.start_point.lineage if run.start_point is not None else None
    teacher = run.teacher_lineage
    ms1m = bool((start or {}).get("ms1m_ancestry") or (teacher or {}).get("ms1m_ancestry"))
    names = ", ".join(d["name"] for d in run.data_card)
    packed = [str(p.get("name")) for d in run.data_card for p in d.get("packed") or [] if isinstance(p, dict)]
    if packed:
        names += f" (packed from {', '.join(packed)})"
    if ms1m:
        caveat = ("MS-Celeb-1M is in this model's ancestry (starting weights or teacher): it shares people with "
                  "celebrity-photo benchmarks (LFW, CFP, CelebA), so accuracy on them is not a clean held-out number.")
    else:
        caveat = (f"No MS-Celeb-1M weights in its lineage; trained on {names}: only people outside that data are a "
                  "clean test.")
    return {"start": start, "teacher": teacher, "data": [d["name"] for d in run.data_card], "ms1m_ancestry": ms1m,
            "benchmark_caveat": caveat}


def _append(path: Path | None, record: dict[str, Any]) -> None:
    if path is None:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def _write_int8(run: _Run) -> str:
    """Write the exported model's int8 network, calibrated on ``int8_calibration`` seeded training crops and checked
    on up to 256 others; a failure (no onnxruntime, poor agreement) leaves the fp32 model as it is and says so."""
    from faceapp.embedding.int8 import quantize_folder

    c = run.config
    total = len(run.train_data)
    count = min(c.int8_calibration, total)
    drawn = np.random.default_rng(c.seed).permutation(total)
    calibration, check = np.sort(drawn[:count]), np.sort(drawn[count:count + 256])
    try:
        entry = quantize_folder(run.out_dir, run.train_data.table.crops(calibration),
                                check_crops=run.train_data.table.crops(check) if check.size >= 16 else None,
                                source=f"the training crops ({count} drawn, seed {c.seed})")
    except Exception as error:                          # the trained model is written: never lose it over int8
        log.warning("int8 network of %s not written: %s", run.out_dir, error)
        return f"int8 network not written ({error}); the model runs on its fp32 network"
    agreed = entry["agreement_with_fp32"]
    return f"int8 network written (cosine to fp32: mean {agreed['mean_cos']}, min {agreed['min_cos']})"


def _export(run: _Run, epochs: int) -> Job[TrainResult]:
    c = run.config
    best_path = run.run_dir / "best.pt"
    if run.best and best_path.is_file():
        run.net.load_state_dict(load_checkpoint(best_path)["model"])
    run.net.eval()
    rate = run.images_seen / max(1e-9, run.train_time)
    best = {k: v for k, v in run.best.items() if k != "report"}
    metrics: dict[str, Any] = {}
    if run.best:
        report = run.best["report"]
        metrics = {"validation": {"protocol": report["protocol"], "accuracy": report["accuracy"],
                                  "accuracy_std": report["accuracy_std"], "eer": report["eer"], "auc": report["auc"],
                                  "tar_at_far": report["tar_at_far"], "n_failed_pairs": report["n_failed_pairs"],
                                  "threshold": report["threshold"], "folds": report["folds"],
                                  "optimistic": report["optimistic"], "epoch": run.best["epoch"]}}
    card = {
        "trained": True,
        "data": run.data_card,
        "train_identities": run.train_data.num_classes,
        "train_images": len(run.train_data),
        "loss": {"name": c.loss, "params": dict(run.loss.hparams)},
        "backbone_params": dict(c.backbone_params),
        "training": {"epochs": epochs, "steps": run.step, "batch_size": c.batch_size, "sampler": run.sampler_kind,
                     "optimizer": c.optimizer, "lr": c.lr, "momentum": c.momentum, "weight_decay": c.weight_decay,
                     "schedule": c.schedule, "warmup_epochs": c.warmup_epochs, "grad_clip": c.grad_clip,
                     "precision": run.precision, "data_on_device": run.device_images is not None,
                     "budget": run.budget.card(run.steps_per_epoch) if run.budget is not None else None,
                     "channels_last": c.channels_last, "seed": c.seed,
                     "augment_on": "device" if run.device_augment is not None else "cpu",
                     "threads": torch.get_num_threads(), "augment": c.to_dict()["augment"],
                     "init": c.init or None, "backbone_lr_mult": c.backbone_lr_mult, "freeze_epochs": c.freeze_epochs,
                     "freeze_bn": c.freeze_bn, "head_init": run.head_init_done},
        "metrics": metrics,
        "lineage": lineage_card(run),
        "best_checkpoint": best,
        "train_time_s": round(run.train_time, 1),
        "images_per_s": round(rate, 1),
        "device": run.device if not run.device.startswith("cuda") else f"{run.device} ({torch.cuda.get_device_name()})",
        "torch": torch.__version__,
        "git_commit": _git_commit(),
    }
    save_model(run.out_dir, run.net, run.model_config, card)
    yield Progress("export", message=f"model written to {run.out_dir}")
    if c.int8_calibration:
        yield Progress("export", message=f"writing its int8 network ({c.int8_calibration} training crops)")
        message = _write_int8(run)
        yield Progress("export", message=message)
    card = read_card(run.out_dir)           # as written: completed with backbone, sizes, params and weights hash
    return TrainResult(model_dir=run.out_dir, run_dir=run.run_dir, steps=run.step, epochs=run.epoch,
                       train_time_s=run.train_time, images_per_s=rate, best=best, history=run.history, card=card)
