"""The budget-fitted schedule (faceapp.training.budget) on counted steps and a simulated clock, alone and in
the training loop (never the real clock)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from faceapp.core.progress import Progress, run_to_completion
from faceapp.data import DatasetSpec
from faceapp.training import AugmentConfig, TrainConfig, train
from faceapp.training.budget import BudgetSchedule


def simulate(budget: float, per_step, cap: int, steps_per_epoch: int) -> tuple[int, BudgetSchedule]:
    """Steps taking ``per_step(step)`` seconds each until the fitted total; returns the steps run."""
    fitter = BudgetSchedule(budget, cap)
    total, step, elapsed = cap, 0, 0.0
    while step < total:
        elapsed += per_step(step)
        step += 1
        new = fitter.observe(step, elapsed, epoch_end=step % steps_per_epoch == 0)
        if new is not None:
            total = new
    return step, fitter


def test_fits_the_budget_after_the_warm_up() -> None:
    # the first steps are slow (compilation), then 50 ms each: timing from the start would stop far too early
    steps, fitter = simulate(3.0, lambda s: 0.5 if s < 3 else 0.05, cap=10_000, steps_per_epoch=10)
    assert steps == 33                                    # 1.5 s in 3 slow steps, then 30 steps of 50 ms
    assert fitter.fits[0]["step"] == 10 and fitter.fits[0]["ms_per_step"] == 50.0   # first epoch end, 5 timed steps
    card = fitter.card(steps_per_epoch=10)
    assert card["fitted_steps"] == steps and card["fitted_epochs"] == steps / 10 and card["time_budget_s"] == 3.0


def test_refits_every_epoch_when_the_speed_changes() -> None:
    # another run joins the GPU at step 100: steps take twice as long; the schedule shrinks to stay inside
    steps, fitter = simulate(10.0, lambda s: 0.05 if s < 100 else 0.1, cap=10_000, steps_per_epoch=20)
    assert fitter.fits[0]["total_steps"] == 200 and len(fitter.fits) > 3
    assert steps == 150                                   # 5 s at 50 ms, then 5 s at 100 ms


def test_never_beyond_the_configured_run() -> None:
    steps, fitter = simulate(1000.0, lambda s: 0.01, cap=120, steps_per_epoch=12)
    assert steps == 120 and fitter.total == 120
    state = fitter.state_dict()
    resumed = BudgetSchedule(1000.0, 120)
    resumed.load_state_dict(state)
    assert resumed.fits == fitter.fits


def test_training_fits_its_schedule_to_the_budget(att_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine on an injected clock: every training step takes 50 ms of it, the budget is 3 s."""
    from faceapp.training import loop

    now = [0.0]
    monkeypatch.setattr(loop, "time", SimpleNamespace(monotonic=lambda: now[0]))
    real_step = loop._Run.train_step

    def step_of_50ms(self, idx):  # noqa: ANN001, ANN202 - the method it wraps
        now[0] += 0.05
        return real_step(self, idx)

    monkeypatch.setattr(loop._Run, "train_step", step_of_50ms)
    config = TrainConfig(data=[DatasetSpec(path=str(att_pack), exclude="att/12")], name="budget", backbone="tiny",
                         input_size=64, epochs=500, batch_size=32, lr=0.1, schedule="cosine", warmup_epochs=1.0,
                         time_budget_s=3.0, log_every=1, augment=AugmentConfig.off(), threads=1,
                         run_dir=str(tmp_path / "run"), out=str(tmp_path / "model"))
    config.validation.holdout = 0.0
    events: list[Progress] = []
    result = run_to_completion(train(config), events.append)
    assert result.steps == 60 < 500 * 3                                # 3 s of 50 ms steps, not 500 epochs
    assert result.train_time_s == pytest.approx(3.0)
    card = result.card
    assert card["train_identities"] == 11 and card["train_images"] == 110       # att/012 excluded from the pack
    budget = card["training"]["budget"]
    assert budget["fitted_steps"] == 60 and budget["fitted_epochs"] == 20.0 and budget["ms_per_step"] == 50.0
    assert budget["time_budget_s"] == 3.0 and card["training"]["epochs"] == 20
    lrs = [e.metrics["lr"] for e in events if e.stage == "train"]
    assert len(lrs) == 60 and lrs[-1] < 0.001 < max(lrs)               # the cosine schedule ended, not cut off
    assert any("fitted" in (e.message or "") for e in events if e.stage == "prepare")
