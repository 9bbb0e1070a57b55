"""The Trainer job's model without Qt: the catalogue, the dataset summary, the TrainConfig a form describes,
one run's lifecycle (started, progress as plot points and log lines, paused with its checkpoint, resumed),
and the activation (preview, activate, the session's active model), with the jobs run at once or faked."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from faceapp.app.trainer import TrainerModel, card_text, distill_settings, load_catalog
from faceapp.core.errors import DatasetError
from faceapp.core.progress import Progress


def _form(att: Path, out: Path, **changes) -> dict:  # noqa: ANN003
    form = {"name": "tiny-run", "out": str(out), "data": {"folder": str(att), "identities": "s1-s10",
                                                          "max_per_identity": 0},
            "augment": None, "validation_mode": "holdout", "metric": "accuracy", "holdout": 0.2, "protocol": None,
            "loss": "arcface", "loss_params": {"s": 16.0}, "backbone": "tiny", "embedding_dim": 24, "input_size": 64,
            "epochs": 3, "max_steps": 0, "batch_size": 4, "pk_k": 4, "optimizer": "sgd", "lr": 0.05,
            "schedule": "constant", "warmup_epochs": 0.0, "device": "cpu", "threads": 1, "log_every": 1,
            "init": "", "backbone_lr_mult": 1.0, "freeze_epochs": 0, "freeze_bn": False, "head_init": "random",
            "precision": "auto", "time_budget_s": 0.0,
            "distill": distill_settings({"embed.weight": 0.0, "relational.weight": 0.0}, {}, "")}
    form.update(changes)
    return form


def _model(session=None, **starters) -> TrainerModel:  # noqa: ANN001, ANN003
    model = TrainerModel(session or SimpleNamespace(store=None, embedder=None), **starters)
    model.events = []
    for name in ("summary_ready", "summary_failed", "run_started", "point", "rate", "log", "trained", "failed",
                 "stopped", "preview_ready", "activated", "message", "error"):
        getattr(model, name).connect(lambda *args, name=name: model.events.append((name, *args)))
    return model


def _names(model: TrainerModel, event: str) -> list:
    return [e for e in model.events if e[0] == event]


def test_the_catalogue_offers_the_zoo():
    model = _model()
    model.set_catalog(load_catalog())
    assert "arcface" in model.losses and "tiny" in model.backbones and "flip" in model.augment_defaults
    assert model.loss_help("triplet").endswith("Trained on P x K batches (K images of each of P identities).")
    assert model.loss_help("no-such-loss") is None


def test_a_form_becomes_a_train_config(att, tmp_path):
    model = _model()
    config = model.build_config(_form(att, tmp_path / "out"))
    assert (config.loss, config.loss_params, config.backbone, config.validation.holdout) == \
        ("arcface", {"s": 16.0}, "tiny", 0.2)
    assert config.augment.flip == 0 and config.data[0].identities == "s1-s10" and config.out == str(tmp_path / "out")
    resumed = model.build_config(_form(att, tmp_path / "out"), resume=tmp_path / "run" / "last.pt")
    assert resumed.resume.endswith("last.pt") and resumed.run_dir == str(tmp_path / "run")
    with pytest.raises(DatasetError, match="CFP folder"):
        model.build_config(_form(att, tmp_path, validation_mode="cfp", protocol={"pairs": ""}))
    with pytest.raises(DatasetError, match="choose a dataset folder"):
        model.build_config(_form(att, tmp_path, data={"folder": ""}))
    assert not model.start(_form(att, tmp_path, data={"folder": ""})) and _names(model, "error")


def test_the_dataset_summary(att):
    model = _model()
    model.refresh_summary(str(att), "s1-s10")
    assert (model.summary.identities, model.summary.images) == (10, 100) and _names(model, "summary_ready")
    model.refresh_summary("")
    assert _names(model, "summary_failed")[-1][1].startswith("choose a dataset folder")


def test_a_run_is_plotted_paused_with_its_checkpoint_and_resumed(att, tmp_path):
    jobs = []

    def start_job(func, config, stop, **callbacks):  # noqa: ANN001, ANN003, ANN202 - records the run, plays it
        jobs.append((config, stop))
        for step in (1, 2):
            callbacks["on_progress"](Progress("train", step, 60, metrics={
                "step": step, "loss": 3.0 / step, "lr": 0.05, "images/s": 12.5, "epoch": 1, "epochs": 3,
                "loss/arcface": 2.0, "loss/center": 1.0}))
        callbacks["on_progress"](Progress("validate", metrics={"epoch": 1, "val_accuracy": 0.8, "val_eer": 0.2,
                                                                "best": True}))
        Path(config.run_dir).mkdir(parents=True, exist_ok=True)
        (Path(config.run_dir) / "last.pt").write_bytes(b"checkpoint")
        callbacks["on_cancelled"]()

    model = _model(start_job=start_job)
    model.start(_form(att, tmp_path / "out"))
    assert model.points["loss"] == ([1.0, 2.0], [3.0, 1.5]) and model.points["center"][1] == [1.0, 1.0]
    assert model.points["accuracy"] == ([1.0], [0.8]) and model.points["lr"][1] == [0.05, 0.05]
    assert _names(model, "rate")[-1][1].startswith("images/s: 12.5   step 2/60")
    assert any("validation accuracy 80.00%" in e[1] and "best so far" in e[1] for e in _names(model, "log"))
    assert model.paused_checkpoint == Path(model.config.run_dir) / "last.pt" and _names(model, "stopped")
    assert model.resume_paused()
    assert jobs[-1][0].resume == str(Path(jobs[0][0].run_dir) / "last.pt")
    model.stop("paused", running=True)
    assert model.stop_token.cancelled and model.stopping == "paused"


def test_activation_asks_first_then_activates_the_session_model(tmp_path):
    activated = []
    session = SimpleNamespace(store="store", embedder="current", options=SimpleNamespace(device="cpu"),
                              activate=lambda embedder, gallery: activated.append((embedder, gallery)))
    new = SimpleNamespace(folder=tmp_path, model_id="new@1")
    outcome = SimpleNamespace(embedder=new, unreachable=["s3"], summary=lambda: "activated new@1; s3 has no crop")

    def start_activation(func, store, folder, options, **callbacks):  # noqa: ANN001, ANN003, ANN202
        assert (store, folder, options) == ("store", tmp_path, session.options)   # the operator travels with them
        callbacks["on_result"]((outcome, "gallery"))

    preview = SimpleNamespace(folder=str(tmp_path), new=new, text=lambda: "new and current numbers")
    model = _model(session, start_activation=start_activation, run=lambda func, *a, on_result=None, on_finished=None,
                   context="", **k: (on_result(preview), on_finished()))
    model.preview_activation()                              # no trained result yet: nothing to ask
    assert not _names(model, "preview_ready")
    model.result = SimpleNamespace(model_dir=tmp_path)
    model.preview_activation()
    assert _names(model, "preview_ready")[-1][1] is preview and not model.preparing
    model.decline(preview)
    assert "cancelled: the current model stays active" in _names(model, "log")[-1][1] and not activated
    model.activate(preview)
    assert activated == [(new, "gallery")] and _names(model, "activated")
    assert _names(model, "message")[-1] == ("message", "warning", "Activated new@1; s3 has no crop.", True)


def test_card_text_names_the_headline_numbers(tmp_path):
    card = {"backbone": "tiny", "embedding_dim": 24, "loss": {"name": "arcface"}, "train_identities": 8,
            "train_images": 80, "metrics": {"validation": {"protocol": "holdout", "epoch": 3, "accuracy": 0.9,
                                                           "accuracy_std": 0.01, "eer": 0.1, "auc": 0.95}}}
    text = card_text(card, tmp_path)
    assert text.startswith(f"Model folder: {tmp_path}") and "accuracy 90.00%" in text and '"backbone": "tiny"' in text
