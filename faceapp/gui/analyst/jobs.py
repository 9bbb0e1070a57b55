"""``JobPanel``: one background job at a time with a progress bar, an ETA line and a Cancel button.

    panel = JobPanel(ctx)
    panel.start(train_job, config, stop, on_result=self._trained, stop_token=stop, context="Training")

The job runs on the shell's generator worker (``faceapp.gui.workers``). ``Cancel`` cancels the worker,
or - when a ``stop_token`` is given - sets that token instead, so a job that checkpoints on its own
cancel flag (the trainer) stops at a clean point rather than being closed between two yields.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from faceapp.core.progress import CancelToken, Progress
from faceapp.gui.workers import Worker, create_worker


def format_duration(seconds: float | None) -> str:
    """"1h 02m", "3m 05s", "42s" (or "" when unknown)."""
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def describe_progress(event: Progress) -> str:
    """One status line: stage, done/total, ETA, message."""
    parts = [event.stage]
    if event.total:
        parts.append(f"{event.done:,}/{event.total:,}")
    eta = format_duration(event.eta_s)
    if eta:
        parts.append(f"ETA {eta}")
    if event.message:
        parts.append(event.message)
    return " - ".join(parts)


class JobPanel(QWidget):
    """Progress bar, status line and Cancel for the one job it runs at a time."""

    job_finished = Signal()          # after the result, error or cancellation was handled

    def __init__(self, ctx: Any, *, cancel_text: str = "Cancel", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.worker: Worker | None = None
        self.last: Progress | None = None
        self.outcome = ""                # "done", "error", "cancelled" after a job
        self._stop: CancelToken | None = None
        self._on_result: Callable[[Any], None] | None = None
        self._on_error: Callable[[BaseException], None] | None = None
        self._on_cancelled: Callable[[], None] | None = None
        self._on_progress: Callable[[Progress], None] | None = None
        self._context = ""
        self._running = False
        self._deliver: Callable[[], None] | None = None     # the outcome's callback, run in _finished
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        row.addWidget(self.bar, 1)
        self.cancel_button = QPushButton(cancel_text)
        self.cancel_button.setEnabled(False)
        self.cancel_button.setToolTip("Stop this job at its next step (nothing half-done is kept)")
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.status = QLabel("")
        self.status.setProperty("role", "muted")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

    @property
    def busy(self) -> bool:
        """True from ``start`` until the job's outcome was handled on the GUI thread (``job_finished``): the
        worker itself ends earlier, while its result is still queued for this thread."""
        return self._running

    def start(self, func: Callable[..., Any], *args: Any, on_result: Callable[[Any], None],
              on_error: Callable[[BaseException], None] | None = None, on_cancelled: Callable[[], None] | None = None,
              on_progress: Callable[[Progress], None] | None = None, stop_token: CancelToken | None = None,
              context: str = "", **kwargs: Any) -> Worker:
        """Run ``func(*args, **kwargs)`` (a function or a Progress generator); callbacks run on the GUI thread."""
        if self.busy:
            raise RuntimeError("a job is already running in this panel")
        self._on_result, self._on_error, self._on_cancelled = on_result, on_error, on_cancelled
        self._on_progress, self._stop, self._context = on_progress, stop_token, context
        self.outcome = ""
        self.last = None
        worker = create_worker(func, *args, **kwargs)
        worker.progress.connect(self._progress)
        worker.returned.connect(self._returned)
        worker.errored.connect(self._errored)
        worker.cancelled.connect(self._cancelled)
        worker.finished.connect(self._finished)
        self.worker = worker
        self._running, self._deliver = True, None
        self.bar.setRange(0, 0)                      # busy until the first progress event with a total
        self.status.setText(f"{context}...")
        self.cancel_button.setEnabled(True)
        return worker.start()

    def cancel(self) -> None:
        """Stop the job (through ``stop_token`` when one was given)."""
        if not self.busy:
            return
        self.cancel_button.setEnabled(False)
        self.status.setText(f"{self._context}: stopping...")
        if self._stop is not None:
            self._stop.cancel()
        else:
            assert self.worker is not None
            self.worker.cancel()

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Block until the job ended (shutdown, tests)."""
        return self.worker is None or self.worker.wait(timeout_s)

    def shutdown(self) -> None:
        """Cancel and join the job (window closing)."""
        self.cancel()
        self.wait(30.0)

    # -- worker signals (GUI thread) ------------------------------------------------------------
    def _progress(self, event: Progress) -> None:
        self.last = event
        if event.total:
            self.bar.setRange(0, int(event.total))
            self.bar.setValue(int(min(event.done, event.total)))
        else:
            self.bar.setRange(0, 0)
        self.status.setText(describe_progress(event))
        if self._on_progress is not None:
            self._on_progress(event)

    def _returned(self, result: Any) -> None:
        self.outcome = "done"
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.status.setText(f"{self._context}: done")
        if self._on_result is not None:
            callback = self._on_result
            self._deliver = lambda: callback(result)

    def _errored(self, error: BaseException) -> None:
        self.outcome = "error"
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.status.setText(f"{self._context}: failed - {error}")
        callback, context = self._on_error, self._context
        self._deliver = (lambda: callback(error)) if callback is not None else \
            (lambda: self.ctx.report_error(error, context))

    def _cancelled(self) -> None:
        self.outcome = "cancelled"
        self.bar.setRange(0, 1)
        self.status.setText(f"{self._context}: stopped")
        self._deliver = self._on_cancelled

    def _finished(self) -> None:
        """The worker's last signal: the panel is free, then the outcome's callback runs (it may start the next
        job), then ``job_finished`` (pages update their buttons)."""
        self.cancel_button.setEnabled(False)
        self._running = False
        deliver, self._deliver = self._deliver, None
        if deliver is not None:
            deliver()
        self.job_finished.emit()
