"""A schedule fitted to a time budget (``TrainConfig.time_budget_s``).

The learning-rate schedule (warm-up + cosine) must end, not be cut off, when the time is up, so the number
of steps it spans is refitted from the measured step time: once after the first timed steps (the first
``warmup`` steps of a session are not timed: compilation, cuDNN autotuning, caches) and then at every epoch
end from the steps since the last fit (runs sharing a GPU slow each other down as they start and finish).
The fit is never more than the configured run (``cap`` = epochs x steps per epoch, or ``max_steps``).

Time is training time (``TrainResult.train_time_s``, the card's ``train_time_s``: the steps, with their data
and augmentation); validation, checkpoints and export come on top. The caller passes the times, so the fit
is tested with counted steps and an injected clock, never the real one.
"""

from __future__ import annotations

from typing import Any


class BudgetSchedule:
    """Refits a run's total steps to ``budget_s`` seconds; ``observe`` after every step."""

    def __init__(self, budget_s: float, cap: int, warmup: int = 5, first_fit_after: int = 20) -> None:
        self.budget_s = float(budget_s)
        self.cap = int(cap)
        self.warmup = int(warmup)
        self.first_fit_after = int(first_fit_after)
        self.session_steps = 0
        self.mark: tuple[int, float] | None = None       # (step, elapsed) where the current timing window began
        self.fits: list[dict[str, Any]] = []

    def observe(self, step: int, elapsed_s: float, epoch_end: bool = False) -> int | None:
        """Record that ``step`` steps are done after ``elapsed_s`` seconds of training; the new total number of
        steps when it refits now, else None."""
        self.session_steps += 1
        if self.session_steps < self.warmup:
            return None
        if self.mark is None:
            self.mark = (step, elapsed_s)
            return None
        timed = step - self.mark[0]
        first = not self.fits and self.session_steps >= self.warmup + self.first_fit_after
        if timed < 1 or not (first or epoch_end):
            return None
        return self.fit(step, elapsed_s)

    def fit(self, step: int, elapsed_s: float) -> int:
        """Total steps that end the schedule inside the budget at the step time measured since the mark."""
        assert self.mark is not None
        per_step = max(1e-9, (elapsed_s - self.mark[1]) / max(1, step - self.mark[0]))
        left = self.budget_s - elapsed_s
        total = min(self.cap, step + max(0, int(left / per_step + 1e-6)))      # spent: stop here
        self.mark = (step, elapsed_s)
        self.fits.append({"step": step, "elapsed_s": round(elapsed_s, 3), "ms_per_step": round(per_step * 1000, 3),
                          "total_steps": total})
        return total

    @property
    def total(self) -> int | None:
        """The latest fitted total (None before the first fit)."""
        return self.fits[-1]["total_steps"] if self.fits else None

    def card(self, steps_per_epoch: int) -> dict[str, Any]:
        """What the model card records: the budget, the latest fit and how many fits there were."""
        last = self.fits[-1] if self.fits else {}
        return {"time_budget_s": self.budget_s, "cap_steps": self.cap, "fitted_steps": last.get("total_steps"),
                "fitted_epochs": round(last["total_steps"] / max(1, steps_per_epoch), 2) if last else None,
                "ms_per_step": last.get("ms_per_step"), "fits": len(self.fits)}

    def state_dict(self) -> dict[str, Any]:
        return {"fits": list(self.fits)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: earlier fits are kept; a resumed session times its own warm-up anew."""
        self.fits = list(state.get("fits") or [])
