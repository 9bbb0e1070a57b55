"""The Trainer job's model: the catalogue the form offers (losses with their hyper-parameters, backbones,
starting points, teachers, distillers, CUDA), the dataset summary, the TrainConfig a form describes, one
training run (start, pause / cancel with a checkpoint, resume), its progress as plot points and log lines,
and the activation of the trained model (preview, re-embedding, then the Workstation's active model).
Qt-free: this is the only place the GUI's trainer reaches ``faceapp.training`` and ``faceapp.nn``.

The Qt view (``faceapp.gui.pages.trainer.TrainerPage``) owns the form and the plots and forwards what the
operator does; long work goes through the starters the view passes in (its job panels: progress, cancel)
and quick work through ``run`` (``AppContext.run``); all are ``run_now`` in tests.

Events (``faceapp.app.events.Event``): ``summary_ready(summary)``, ``summary_failed(text)``;
``run_started(config)``; ``point(plot, key, xs, ys, style)`` (a curve's points so far; plot: "loss", "lr"
or "val"); ``rate(text)``;
``log(text)``; ``trained(result)``; ``failed(error)``; ``stopped()``; ``preview_ready(preview)`` (ask the
operator); ``activated(result)``; ``message(level, text, persistent)``; ``error(exception, context)``.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from faceapp.app.events import Event, run_now
from faceapp.app.identities import Runner
from faceapp.core.errors import DatasetError
from faceapp.core.paths import data_dir, user_models_dir
from faceapp.core.progress import CancelToken, Job, Progress


def training_job(config: Any, stop: CancelToken) -> Job[Any]:
    """``train(config, stop)`` under the page's own stop flag (the worker's flag would close the generator
    between two yields, skipping the checkpoint the trainer writes when its flag is set)."""
    from faceapp.training import train

    return (yield from train(config, stop))


def activation_job(store: Any, folder: Path, options: Any, cancel: CancelToken) -> Job[tuple[Any, Any]]:
    """Activate the model (re-embed the gallery), then build its gallery index for the live pipeline, the way
    the session builds its own (``gallery_for``: the session's operator is kept)."""
    from faceapp.app.workstation import gallery_for
    from faceapp.services.activation import activate_model

    result = yield from activate_model(store, folder, device=options.device, cancel=cancel)
    gallery = gallery_for(store, result.embedder, options) if store is not None else None
    return result, gallery


def load_catalog() -> dict[str, Any]:
    """What the form offers: every loss with its hyper-parameters, the backbones, CUDA, augmentation defaults."""
    from dataclasses import asdict

    import torch

    from faceapp.core.paths import bundled_models_dir
    from faceapp.embedding.pretrained import list_pretrained, start_architecture
    from faceapp.nn.backbones import list_backbones
    from faceapp.nn.losses import describe_losses
    from faceapp.nn.losses.distill import distill_form_fields
    from faceapp.training.config import AugmentConfig, TrainConfig
    from faceapp.training.teachers import teacher_choices

    starts: dict[str, dict[str, Any]] = {}
    candidates = list(list_pretrained()) + sorted(str(p) for p in bundled_models_dir().glob("*") if (p / "config.json").is_file())
    for spec in candidates:
        try:
            arch = start_architecture(spec)
        except Exception:  # noqa: BLE001 - a broken folder is simply not offered
            continue
        starts[spec] = {"backbone": arch.backbone, "embedding_dim": arch.embedding_dim, "input_size": arch.input_size,
                        "summary": list_pretrained().get(spec, f"model folder {spec}")}
    defaults = TrainConfig()
    teachers = teacher_choices() + [spec for spec in starts if spec not in list_pretrained()]
    distill = distill_form_fields({"embed": defaults.distill_embed_weight, "relational": defaults.distill_relational_weight})
    return {"losses": describe_losses(), "backbones": list_backbones(), "cuda": bool(torch.cuda.is_available()),
            "augment": asdict(AugmentConfig()), "starts": starts, "teachers": teachers, "distill": distill}


def card_text(card: dict[str, Any], model_dir: Path | None = None) -> str:
    """A readable model card: headline numbers, then the full JSON."""
    lines = []
    if model_dir is not None:
        lines.append(f"Model folder: {model_dir}")
    lines.append(f"Backbone {card.get('backbone')} -> {card.get('embedding_dim')}-d, loss "
                 f"{(card.get('loss') or {}).get('name')}, {card.get('train_identities')} identities / "
                 f"{card.get('train_images')} images")
    val = (card.get("metrics") or {}).get("validation")
    if val:
        lines.append(f"Best validation ({val['protocol']}, epoch {val['epoch']}): accuracy {val['accuracy'] * 100:.2f}% "
                     f"+- {val['accuracy_std'] * 100:.2f}, EER {val['eer'] * 100:.2f}%, AUC {val['auc']:.4f}")
    lines.append(f"Training: {card.get('train_time_s')} s on {card.get('device')}, {card.get('images_per_s')} images/s")
    return "\n".join(lines) + "\n\n" + json.dumps(card, indent=2, default=str)


def distill_settings(values: Mapping[str, Any], changed: Mapping[str, Any], teacher: str) -> dict[str, Any]:
    """The TrainConfig fields of the distillation form (all its ``values``, the ``changed`` ones): teacher, the
    two weights, and the other parameters of the distillers in use."""
    teacher = teacher.strip()
    used = {k.split(".")[0] for k, v in values.items() if k.endswith(".weight") and v > 0} if teacher else set()
    params = {k: v for k, v in changed.items() if not k.endswith(".weight") and k.split(".")[0] in used}
    return {"teacher": teacher, "distill_embed_weight": float(values.get("embed.weight", 0.0)),
            "distill_relational_weight": float(values.get("relational.weight", 0.0)), "distill_params": params}


class TrainerModel:
    """State and use cases of the Trainer tab (see the module docstring)."""

    def __init__(self, session: Any, run: Runner = run_now, *, start_job: Runner = run_now,
                 start_activation: Runner = run_now, start_summary: Runner = run_now) -> None:
        self.session = session              # .store / .embedder / .options.device / activate(embedder, gallery)
        self.run = run
        self.start_job, self.start_activation, self.start_summary = start_job, start_activation, start_summary
        self.losses: dict[str, dict[str, Any]] = {}
        self.backbones: dict[str, str] = {}
        self.starts: dict[str, dict[str, Any]] = {}
        self.teachers: list[str] = []
        self.distill_fields: list[Any] = []
        self.cuda = False
        self.augment_defaults: dict[str, Any] = {}
        self.stop_token: CancelToken | None = None
        self.config: Any = None                 # the TrainConfig of the current / last run
        self.result: Any = None                 # TrainResult of the last finished run
        self.paused_config: Any = None          # the stopped run Resume continues
        self.paused_checkpoint: Path | None = None
        self.summary: Any = None
        self.points: dict[str, tuple[list[float], list[float]]] = {}
        self.stopping = ""
        self.preparing = False                  # an activation preview is being computed
        for name in ("summary_ready", "summary_failed", "run_started", "point", "rate", "log", "trained", "failed",
                     "stopped", "preview_ready", "activated", "message", "error"):
            setattr(self, name, Event(name))

    # -- catalogue --------------------------------------------------------------------------------
    def set_catalog(self, catalog: Mapping[str, Any]) -> None:
        self.losses = {d["name"]: d for d in catalog["losses"]}
        self.backbones = dict(catalog["backbones"])     # name -> description
        self.starts = dict(catalog.get("starts", {}))
        self.teachers = list(catalog.get("teachers", []))
        self.distill_fields = list(catalog.get("distill", []))
        self.cuda = bool(catalog["cuda"])
        self.augment_defaults = dict(catalog["augment"])

    def loss_help(self, name: str) -> str | None:
        info = self.losses.get(name)
        if info is None:
            return None
        return info["summary"] + ("  Trained on P x K batches (K images of each of P identities)."
                                  if info["requires_pk_sampler"] else "")

    # -- dataset ----------------------------------------------------------------------------------
    @staticmethod
    def dataset_spec(folder: str, identities: str = "", max_per_identity: int = 0) -> Any:
        """The DatasetSpec of the form (DatasetError when no folder is given)."""
        from faceapp.training.config import DatasetSpec

        if not folder:
            raise DatasetError("choose a dataset folder (one sub-folder of images per identity, or the CFP folder)")
        return DatasetSpec(path=folder, identities=identities.strip(), max_per_identity=max_per_identity)

    def refresh_summary(self, folder: str, identities: str = "", max_per_identity: int = 0) -> None:
        """Scan the dataset folder (a job): ``summary_ready`` or ``summary_failed``."""
        try:
            spec = self.dataset_spec(folder, identities, max_per_identity)
        except DatasetError as error:
            self.summary_failed.emit(str(error))
            return
        from faceapp.services.dataset_summary import summarize_dataset

        self.start_summary(summarize_dataset, spec, on_result=self._summary_ready, on_error=self._summary_error,
                           context="Scanning the dataset")

    def _summary_ready(self, summary: Any) -> None:
        self.summary = summary
        self.summary_ready.emit(summary)

    def _summary_error(self, error: BaseException) -> None:
        self.summary = None
        self.summary_failed.emit(str(error))

    # -- the TrainConfig --------------------------------------------------------------------------
    def build_config(self, form: Mapping[str, Any], *, resume: Path | None = None) -> Any:
        """The TrainConfig a form describes (DatasetError naming a bad field). ``form`` holds the TrainConfig
        fields by name plus: data (folder, identities, max_per_identity), augment (None: off, else the
        augmentation fields), validation_mode (holdout/lfw/cfp/none), metric, holdout, protocol (pairs,
        root, folds, cfp_protocol), distill (TrainConfig's distillation fields)."""
        from faceapp.training.config import AugmentConfig, TrainConfig, ValidationConfig

        form = dict(form)
        name = str(form.pop("name", "")).strip() or "model"
        run_dir = resume.parent if resume is not None else data_dir() / "runs" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        out = str(form.pop("out", "")).strip()
        if not out:
            out_path = user_models_dir() / name
            out = str(out_path if not out_path.exists() else out_path.with_name(f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"))
        augment = AugmentConfig.off()
        for key, value in (form.pop("augment", None) or {}).items():
            setattr(augment, key, value)
        mode = form.pop("validation_mode", "none")
        validation = ValidationConfig(metric=form.pop("metric", "accuracy"),
                                      holdout=form.pop("holdout", 0.0) if mode == "holdout" else 0.0)
        where = form.pop("protocol", None) or {}
        if mode in ("lfw", "cfp"):
            if not where.get("pairs"):
                raise DatasetError(f"validation: give the {'pairs file' if mode == 'lfw' else 'CFP folder'}")
            validation.pairs, validation.format, validation.folds = where["pairs"], mode, where["folds"]
            validation.root = where["root"] if mode == "lfw" else ""
            validation.protocol = where["cfp_protocol"]
        data = form.pop("data")
        distill = form.pop("distill", None) or {}
        config = TrainConfig(data=[self.dataset_spec(**data)], name=name, out=out, run_dir=str(run_dir),
                             resume=str(resume) if resume else "", augment=augment, validation=validation,
                             **form, **distill)
        return config.validate()

    # -- one run ----------------------------------------------------------------------------------
    def start(self, form: Mapping[str, Any]) -> bool:
        """Start a new run with the form's settings; False (and ``error``) when a field is wrong."""
        try:
            config = self.build_config(form)
        except Exception as error:  # noqa: BLE001 - a bad field is the user's to fix
            self.error.emit(error, "Training settings")
            return False
        self.start_config(config)
        return True

    def start_config(self, config: Any) -> None:
        """Start a new run of ``config`` (a TrainConfig)."""
        self.points.clear()
        self.result = None
        self.log.emit(f"New run in {config.run_dir}")
        self._run(config)

    def resume_paused(self) -> bool:
        """Continue the paused run from its ``last.pt`` (a run stopped while aligning restarts; the alignment
        cache continues where it stopped); False when there is no paused run."""
        if self.paused_config is None:
            return False
        config = self.paused_config
        if self.paused_checkpoint is not None and self.paused_checkpoint.is_file():
            config = replace(config, resume=str(self.paused_checkpoint))
        self.log.emit(f"Resuming from {config.resume or 'the start (no checkpoint yet)'}")
        self._run(config)
        return True

    def resume_from(self, checkpoint: Path, form: Mapping[str, Any]) -> bool:
        """Resume from a checkpoint file with the form's settings."""
        try:
            config = self.build_config(form, resume=Path(checkpoint))
        except Exception as error:  # noqa: BLE001
            self.error.emit(error, "Training settings")
            return False
        self.log.emit(f"Resuming from {checkpoint}")
        self._run(config)
        return True

    def _run(self, config: Any) -> None:
        self.config = config
        self.paused_config, self.paused_checkpoint = None, None
        self.stopping = ""
        self.stop_token = CancelToken()
        self.run_started.emit(config)
        self.start_job(training_job, config, self.stop_token, on_result=self._trained, on_error=self._failed,
                       on_cancelled=self._stopped, on_progress=self.progress, context="Training")

    def stop(self, why: str, *, running: bool) -> None:
        """Pause or cancel: the trainer finishes the step, writes ``last.pt`` and stops."""
        if running and self.stop_token is not None:
            self.stopping = why
            self.stop_token.cancel()
            self.log.emit(f"Stopping ({why}) after the current step...")

    def progress(self, event: Progress) -> None:
        """A training event: plot points, the rate line, log lines."""
        m = event.metrics
        if event.stage == "train":
            step = m.get("step", event.done)
            self._point("loss", "loss", step, m.get("loss"))
            terms = {k[5:]: v for k, v in m.items() if k.startswith("loss/")}
            if len(terms) > 1:                       # a single term is the loss itself
                for key, value in terms.items():
                    self._point("loss", key, step, value, width=1.5, dashed=True)
            self._point("lr", "lr", step, m.get("lr"))
            if "train_acc" in m and event.total:
                epochs = float(m.get("epochs", 1))
                self._point("val", "train acc", step / event.total * epochs, m["train_acc"], width=1.0, dashed=True)
            if "images/s" in m:
                self.rate.emit(f"images/s: {m['images/s']:.1f}   step {step}/{event.total}   "
                               f"epoch {m.get('epoch')}/{m.get('epochs')}")
        elif event.stage == "validate" and "val_accuracy" in m:
            epoch = m["epoch"]
            self._point("val", "accuracy", epoch, m["val_accuracy"], symbol="o")
            self._point("val", "EER", epoch, m["val_eer"], symbol="t")
            self.log.emit(f"epoch {epoch}: validation accuracy {m['val_accuracy'] * 100:.2f}%, EER "
                          f"{m['val_eer'] * 100:.2f}%" + ("  (best so far)" if m.get("best") else ""))
        elif event.stage in ("prepare", "export") and event.message:
            self.log.emit(event.message)
        elif event.stage == "teacher" and ("to_embed" in event.metrics or not event.total):
            self.log.emit(f"teacher: {event.message}")
        elif event.stage == "align" and event.total and event.done == event.total:
            self.log.emit(f"aligned {event.done} images ({event.metrics.get('failed', 0)} without a face)")

    def _point(self, plot: str, key: str, x: float, y: Any, **style: Any) -> None:
        import math

        if y is None or not math.isfinite(y):
            return
        xs, ys = self.points.setdefault(key, ([], []))
        xs.append(float(x))
        ys.append(float(y))
        self.point.emit(plot, key, xs, ys, style)

    def _trained(self, result: Any) -> None:
        self.result = result
        self.log.emit(f"Model written to {result.model_dir} ({result.steps} steps, {result.train_time_s:.0f} s, "
                      f"{result.images_per_s:.1f} images/s)")
        self.message.emit("info", f"Training finished: model in {result.model_dir}. Activate it from the "
                                  "Trainer's model card.", False)
        self.trained.emit(result)

    def _failed(self, error: BaseException) -> None:
        self.log.emit(f"Training failed: {error}")
        self.error.emit(error, "Training")
        self.failed.emit(error)

    def _stopped(self) -> None:
        checkpoint = Path(self.config.run_dir) / "last.pt"
        self.paused_config = self.config
        self.paused_checkpoint = checkpoint if checkpoint.is_file() else None
        why = self.stopping or "stopped"
        self.log.emit(f"Training {why}; " + (f"checkpoint {checkpoint}: Resume continues from it"
                                             if self.paused_checkpoint else
                                             "no checkpoint yet: Resume starts the run again"))
        self.stopping = ""
        self.stopped.emit()

    # -- activation -------------------------------------------------------------------------------
    def preview_activation(self) -> None:
        """Ask first: ``activation_preview`` (both models' validation numbers and thresholds, the crops to
        re-embed, the identities the new model will not find), then ``preview_ready``."""
        if self.result is None or self.preparing:
            return
        from faceapp.services.activation import activation_preview

        self.preparing = True
        self.run(activation_preview, self.session.store, Path(self.result.model_dir), self.session.embedder,
                 on_result=self.preview_ready.emit, on_finished=self._preview_finished,
                 context="Preparing the activation")

    def _preview_finished(self) -> None:
        self.preparing = False

    def activate(self, preview: Any) -> None:
        """The operator said yes: re-embed the gallery with the trained model (a job), then make it active."""
        self.log.emit("Activating:\n" + preview.text())
        self.start_activation(activation_job, self.session.store, Path(preview.folder), self.session.options,
                              on_result=self._activated, context="Activating the model")

    def decline(self, preview: Any) -> None:
        self.log.emit(f"Activation of {preview.new.model_id} cancelled: the current model stays active")

    def _activated(self, outcome: tuple[Any, Any]) -> None:
        result, gallery = outcome
        self.session.activate(result.embedder, gallery)      # the workstation's active model (and options.model)
        summary = result.summary()
        self.log.emit(summary)
        missing = bool(getattr(result, "unreachable", None))     # named in the summary; the Live page keeps warning
        self.message.emit("warning" if missing else "info", summary[:1].upper() + summary[1:] + ".", missing)
        self.activated.emit(result)
