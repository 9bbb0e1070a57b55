"""Progress events and cancellation for long work, written once as generators.

Long jobs (alignment cache, training, evaluation, bulk enrolment, gallery re-embedding) are generators
that ``yield Progress(...)`` and check a ``CancelToken``. The CLI iterates them and prints; the GUI runs
them on a worker thread and re-emits each event as a Qt signal. The generator's ``return`` value is the
job's result (``StopIteration.value``; see ``run_to_completion``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, TypeVar

from faceapp.core.errors import CancelledError

R = TypeVar("R")


@dataclass
class Progress:
    """One step of a long job: what it is doing, how far along, and any live metrics."""

    stage: str
    done: int = 0
    total: int | None = None
    message: str = ""
    eta_s: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        """done/total in [0, 1], or None when the total is unknown."""
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))


Job = Generator[Progress, None, R]


class CancelToken:
    """A thread-safe cancel flag shared between the job and whoever may stop it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self, what: str = "job") -> None:
        """Raise ``CancelledError`` if cancellation was requested."""
        if self._event.is_set():
            raise CancelledError(f"{what} cancelled")


class EtaClock:
    """Estimates remaining seconds from the average rate since start."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.start = time.monotonic()

    def eta(self, done: int) -> float | None:
        """Seconds left, or None until something is done or when the total is unknown."""
        if not self.total or done <= 0:
            return None
        elapsed = time.monotonic() - self.start
        return elapsed / done * max(0, self.total - done)

    def rate(self, done: int) -> float:
        """Items per second since start."""
        elapsed = max(1e-9, time.monotonic() - self.start)
        return done / elapsed


def run_to_completion(job: Job[R], on_progress: Callable[[Progress], None] | None = None) -> R:
    """Drive a progress generator to its end and return its result."""
    while True:
        try:
            event = next(job)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if on_progress is not None:
            on_progress(event)
