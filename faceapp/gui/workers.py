"""Run functions and progress generators off the GUI thread, napari style.

``create_worker(fn, *args, **kwargs)`` wraps a plain function or a generator function (the project's
long jobs yield ``faceapp.core.progress.Progress`` and return their result) in a ``Worker`` whose
signals are delivered on the GUI thread:

- ``started()``                    the job began on a pool thread
- ``progress(Progress)``           each ``Progress`` the generator yielded
- ``yielded(object)``              anything else it yielded
- ``returned(object)``             the function's return value / the generator's ``return`` value
- ``errored(BaseException)``       it raised (``CancelledError`` goes to ``cancelled`` instead)
- ``cancelled()``                  it stopped because ``cancel()`` was called
- ``finished()``                   always last, whatever happened

Cancellation goes through a ``CancelToken``: when the function has a ``cancel`` parameter the
worker's token is passed to it, and a generator is also stopped between two yields.

    worker = create_worker(enroll_job, name, paths)          # enroll_job(name, paths, cancel) -> Job
    worker.progress.connect(bar.set_progress)
    worker.returned.connect(self._on_saved)
    worker.errored.connect(self.ctx.report_error)
    worker.start()

Workers are kept alive until ``finished`` has been delivered; ``shutdown_workers()`` cancels and joins
all of them (the main window calls it on close, tests in teardown).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from faceapp.core.errors import CancelledError
from faceapp.core.progress import CancelToken, Progress

log = logging.getLogger(__name__)

_ACTIVE: set["Worker"] = set()
_LOCK = threading.Lock()
_POOL: QThreadPool | None = None


def worker_pool() -> QThreadPool:
    """The pool GUI workers run on (at least 4 threads: a long job must not starve quick SQL calls)."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(max(4, QThreadPool.globalInstance().maxThreadCount()))
    return _POOL


class WorkerSignals(QObject):
    """Signals of one worker; this object lives on the GUI thread so slots run there."""

    started = Signal()
    progress = Signal(object)
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    cancelled = Signal()
    finished = Signal()


class Worker(QRunnable):
    """One function or generator run on the worker pool; see the module docstring."""

    def __init__(self, func: Callable[..., Any], *args: Any, cancel: CancelToken | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.func = func
        self.token = cancel or CancelToken()
        if cancel is None and _accepts_cancel(func):
            kwargs["cancel"] = self.token
        self.args = args
        self.kwargs = kwargs
        self.signals = WorkerSignals()
        self._done = threading.Event()
        self._started = False
        self.result: Any = None
        self.error: BaseException | None = None
        # convenient aliases: worker.progress.connect(...)
        self.started = self.signals.started
        self.progress = self.signals.progress
        self.yielded = self.signals.yielded
        self.returned = self.signals.returned
        self.errored = self.signals.errored
        self.cancelled = self.signals.cancelled
        self.finished = self.signals.finished
        self._exited = threading.Event()
        self._exited_at = 0.0
        _reaper()  # created on the GUI thread, before any pool thread needs it

    # -- control (GUI thread) -------------------------------------------------------------------
    def start(self) -> "Worker":
        """Queue the job on the worker pool; returns self for chaining."""
        if self._started:
            raise RuntimeError("a worker can be started only once")
        self._started = True
        with _LOCK:
            _ACTIVE.add(self)
        worker_pool().start(self)
        return self

    def cancel(self) -> None:
        """Ask the job to stop (at its next ``CancelToken`` check or its next yield)."""
        self.token.cancel()

    @property
    def is_running(self) -> bool:
        """True from ``start()`` until the job has ended."""
        return self._started and not self._done.is_set()

    @property
    def is_done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the job has ended (not its signals delivered); False on timeout."""
        return self._done.wait(timeout_s)

    # -- the pool thread -----------------------------------------------------------------------
    def run(self) -> None:  # noqa: D401 - QRunnable API
        signals = self.signals
        try:
            signals.started.emit()
            if self.token.cancelled:
                raise CancelledError("cancelled before it started")
            outcome = self.func(*self.args, **self.kwargs)
            if inspect.isgenerator(outcome):
                outcome = self._drive(outcome)
            self.result = outcome
            signals.returned.emit(outcome)
        except CancelledError:
            signals.cancelled.emit()
        except BaseException as error:  # noqa: BLE001 - reported to the GUI, never lost
            self.error = error
            error.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            log.debug("worker %s failed", getattr(self.func, "__name__", self.func), exc_info=True)
            signals.errored.emit(error)
        finally:
            self._done.set()
            signals.finished.emit()
            self._exited_at = time.monotonic()
            self._exited.set()
            _reaper().reap.emit()   # queued after ``finished``: forget this worker once that is delivered

    def _drive(self, generator: Any) -> Any:
        while True:
            if self.token.cancelled:
                generator.close()
                raise CancelledError("cancelled")
            try:
                item = next(generator)
            except StopIteration as stop:
                return stop.value
            if isinstance(item, Progress):
                self.signals.progress.emit(item)
            else:
                self.signals.yielded.emit(item)



class _Reaper(QObject):
    """Drops finished workers on the GUI thread, after their last signal was delivered.

    A worker holds what it ran (often a bound method of a page), so the last reference to a closed
    page can be the worker's: releasing it on a pool thread would destroy widgets there (deadlocks and
    crashes in Qt). So workers are only ever released here, on the GUI thread, and only ``GRACE_S``
    after their ``run()`` finished, when the pool thread has certainly let go of its own temporary
    references. Nor are workers connected to their own signals (a slot holding the last reference to
    the object that emits it crashes PySide6): the pool thread emits ``reap`` after ``finished``, both
    queued to the GUI thread in order, so ``finished`` has been delivered when ``_purge`` runs.
    """

    GRACE_S = 0.5
    reap = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.reap.connect(self._purge)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._purge)

    def _purge(self) -> None:
        now = time.monotonic()
        with _LOCK:
            finished = [w for w in _ACTIVE if w._exited.is_set()]
            ripe = [w for w in finished if now - w._exited_at >= self.GRACE_S]
            for worker in ripe:
                _ACTIVE.discard(worker)
            waiting = len(finished) > len(ripe)
        del ripe, finished          # the workers (and what they hold) are released here, on this thread
        if waiting and not self._timer.isActive():
            self._timer.start(int(self.GRACE_S * 1000) + 50)


_REAPER: _Reaper | None = None


def _reaper() -> _Reaper:
    global _REAPER
    if _REAPER is None:
        _REAPER = _Reaper()
    return _REAPER


def _accepts_cancel(func: Callable[..., Any]) -> bool:
    try:
        return "cancel" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def create_worker(func: Callable[..., Any], *args: Any, cancel: CancelToken | None = None, **kwargs: Any) -> Worker:
    """A not-yet-started ``Worker`` running ``func(*args, **kwargs)``; call ``.start()`` after connecting."""
    return Worker(func, *args, cancel=cancel, **kwargs)


def active_workers() -> list[Worker]:
    """Workers started and not yet finished (or whose ``finished`` is not yet delivered)."""
    with _LOCK:
        return list(_ACTIVE)


def shutdown_workers(timeout_s: float = 10.0) -> bool:
    """Cancel every active worker and wait for them to end; False if one is still running."""
    workers = active_workers()
    for worker in workers:
        worker.cancel()
    ok = all(worker.wait(timeout_s) for worker in workers)
    if _POOL is not None:
        ok = _POOL.waitForDone(int(timeout_s * 1000)) and ok
    return ok
