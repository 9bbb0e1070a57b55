"""Generator/function workers: signals arrive on the GUI thread, in order, and cancellation works."""

from __future__ import annotations

import threading
import time

import pytest

from faceapp.core.errors import InputFileError
from faceapp.core.progress import CancelToken, Progress
from faceapp.gui.workers import active_workers, create_worker, shutdown_workers


def _collect(worker):  # noqa: ANN001, ANN202
    events: list[tuple[str, object]] = []
    for name in ("started", "progress", "yielded", "returned", "errored", "cancelled", "finished"):
        getattr(worker, name).connect(lambda *a, n=name: events.append((n, a[0] if a else None)))
    return events


def test_function_worker_returns_its_value_on_the_gui_thread(qtbot):
    gui_thread = threading.get_ident()
    threads: list[int] = []

    def job(a: int, b: int) -> int:
        threads.append(threading.get_ident())
        return a + b

    worker = create_worker(job, 2, b=3)
    events = _collect(worker)
    slot_threads: list[int] = []
    worker.returned.connect(lambda _: slot_threads.append(threading.get_ident()))
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert [e[0] for e in events] == ["started", "returned", "finished"]
    assert events[1][1] == 5
    assert threads and threads[0] != gui_thread, "the job must run off the GUI thread"
    assert slot_threads == [gui_thread], "slots must run on the GUI thread"


def test_generator_worker_reports_progress_and_return_value(qtbot):
    def job(n: int, cancel: CancelToken):
        for i in range(n):
            cancel.raise_if_cancelled()
            yield Progress("count", i + 1, n)
        yield "not progress"
        return "done"

    worker = create_worker(job, 3)
    events = _collect(worker)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    names = [e[0] for e in events]
    assert names == ["started", "progress", "progress", "progress", "yielded", "returned", "finished"]
    assert [e[1].done for e in events if e[0] == "progress"] == [1, 2, 3]
    assert events[-2][1] == "done" and worker.result == "done"


def test_errors_are_delivered_not_raised(qtbot):
    def job() -> None:
        raise InputFileError("photo.jpg: not an image")

    worker = create_worker(job)
    events = _collect(worker)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert [e[0] for e in events] == ["started", "errored", "finished"]
    assert isinstance(events[1][1], InputFileError) and "photo.jpg" in str(events[1][1])


def test_cancel_stops_a_generator_between_yields(qtbot):
    gate = threading.Event()

    def endless():
        i = 0
        while True:
            i += 1
            gate.set()
            time.sleep(0.005)
            yield Progress("spin", i)

    worker = create_worker(endless)
    events = _collect(worker)
    worker.start()
    assert gate.wait(5)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.cancel()
    names = [e[0] for e in events]
    assert "cancelled" in names and "returned" not in names and names[-1] == "finished"


def test_token_is_passed_to_functions_with_a_cancel_parameter(qtbot):
    seen: list[object] = []

    def job(cancel: CancelToken) -> bool:
        seen.append(cancel)
        return cancel.cancelled

    worker = create_worker(job)
    with qtbot.waitSignal(worker.returned, timeout=5000):
        worker.start()
    assert seen == [worker.token]


def test_shutdown_cancels_and_joins_running_workers(qtbot):
    def slow(cancel: CancelToken):
        while True:
            cancel.raise_if_cancelled()
            time.sleep(0.01)
            yield Progress("wait")

    workers = [create_worker(slow).start() for _ in range(3)]
    qtbot.waitUntil(lambda: all(w.is_running for w in workers), timeout=5000)
    assert shutdown_workers(10.0)
    assert all(w.is_done for w in workers)
    qtbot.waitUntil(lambda: not active_workers(), timeout=5000)


def test_a_worker_starts_only_once(qtbot):
    worker = create_worker(lambda: 1)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    with pytest.raises(RuntimeError):
        worker.start()
