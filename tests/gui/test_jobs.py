"""JobPanel: busy until the job's outcome was handled on the GUI thread, so a page never starts a second job
while the first one's result is still queued, and a callback may chain the next job."""

from __future__ import annotations

from types import SimpleNamespace


def test_busy_until_the_outcome_is_delivered_and_callbacks_can_chain(qtbot) -> None:
    from faceapp.gui.analyst.jobs import JobPanel

    panel = JobPanel(SimpleNamespace(report_error=lambda error, context: None))
    qtbot.addWidget(panel)
    results: list[int] = []

    def first_done(value: int) -> None:
        assert not panel.busy                           # the panel is free when the callback runs...
        results.append(value)
        panel.start(lambda: value + 1, on_result=results.append, context="second")   # ...so it can chain

    finished: list[bool] = []
    panel.job_finished.connect(lambda: finished.append(panel.busy))
    worker = panel.start(lambda: 41, on_result=first_done, context="first")
    assert worker.wait(10.0)                            # the worker has ended, its result is still queued
    assert panel.busy and results == []
    qtbot.waitUntil(lambda: results == [41, 42] and not panel.busy, timeout=10000)
    assert panel.outcome == "done" and finished[0] is True   # job_finished of the first: the second already runs


def test_errors_and_cancellation_reach_their_callbacks_after_the_worker(qtbot) -> None:
    from faceapp.core.errors import CancelledError
    from faceapp.gui.analyst.jobs import JobPanel

    reported: list[str] = []
    panel = JobPanel(SimpleNamespace(report_error=lambda error, context: reported.append(f"{context}: {error}")))
    qtbot.addWidget(panel)

    def fail() -> None:
        raise ValueError("broken input")

    panel.start(fail, on_result=lambda _: None, context="Loading")
    qtbot.waitUntil(lambda: not panel.busy, timeout=10000)
    assert panel.outcome == "error" and reported == ["Loading: broken input"]

    stopped: list[bool] = []

    def stop() -> None:
        raise CancelledError("stopped")

    panel.start(stop, on_result=lambda _: None, on_cancelled=lambda: stopped.append(panel.busy), context="x")
    qtbot.waitUntil(lambda: not panel.busy, timeout=10000)
    assert panel.outcome == "cancelled" and stopped == [False]
