"""Cyclic garbage is collected on the GUI thread only, from a timer, once automatic collection is off."""

from __future__ import annotations

import gc
import threading
import weakref

from faceapp.gui.gc_thread import collect_on_gui_thread


class _Node:
    def __init__(self) -> None:
        self.me = self                     # a reference cycle: only the cyclic collector frees it


def test_cycles_are_collected_by_the_timer_on_the_gui_thread(qapp, qtbot) -> None:  # noqa: ANN001
    gc.enable()                            # the GUI tests' fixture disables it: this test must see the call do it
    collector = collect_on_gui_thread(qapp, interval_ms=50)
    assert not gc.isenabled()
    collector.timer.setInterval(50)        # an earlier test may have installed it with the default interval
    assert collect_on_gui_thread(qapp) is collector and not gc.isenabled()
    threads: list[int] = []

    def record(phase: str, _info: dict) -> None:
        if phase == "start":
            threads.append(threading.get_ident())

    gc.callbacks.append(record)
    try:
        def allocate_in_a_thread() -> None:
            for _ in range(5 * collector.threshold[0]):
                _Node()                    # far past the threshold: automatic collection would run here

        probe = _Node()
        ref = weakref.ref(probe)
        del probe
        worker = threading.Thread(target=allocate_in_a_thread)
        worker.start()
        worker.join()
        assert ref() is not None and threads == []          # nothing collected on the worker
        before = collector.collections

        def collected() -> bool:
            # keep generation 0 past its threshold (its counter also drops when other objects are freed)
            for _ in range(collector.threshold[0] + 1):
                _Node()
            return collector.collections > before

        qtbot.waitUntil(collected, timeout=5000)
        assert ref() is None                                   # freed by the timer's collection, not by hand
        assert set(threads) == {threading.get_ident()}       # only the GUI thread collected
    finally:
        gc.callbacks.remove(record)
