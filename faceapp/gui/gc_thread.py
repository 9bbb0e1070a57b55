"""Python's cyclic garbage collector, run only on the GUI thread.

Python collects cycles in whichever thread happens to allocate when a generation's threshold is passed.
In the workstation that is usually a worker (training, scoring, enrolment allocate a lot), and when the
garbage holds Qt wrappers (a closed window, a dismissed banner, a replaced plot item) their C++ objects
are then destroyed off the GUI thread: Qt warns "Timers cannot be started from another thread" and
PySide6 6.12 crashes with a segmentation fault ("Garbage-collecting"). Seen in the GUI test suite.

``collect_on_gui_thread(app)`` does what pyqtgraph's ``GarbageCollector`` does: it switches automatic
collection off and collects from a QTimer on the GUI thread instead, with the same generation thresholds.
Reference counting still frees everything that is not in a cycle at once.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500
_collector: "GuiThreadCollector | None" = None


class GuiThreadCollector(QObject):
    """Collects cycles from a timer on the thread it lives on (the GUI thread)."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self.collections = 0
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        gc.disable()
        self.timer.start(interval_ms)

    def check(self) -> None:
        """Collect the generations whose allocation counts passed their thresholds."""
        count0, count1, count2 = gc.get_count()
        if count0 <= self.threshold[0]:
            return
        generation = 2 if count1 > self.threshold[1] and count2 > self.threshold[2] else \
            1 if count1 > self.threshold[1] else 0
        gc.collect(generation)
        self.collections += 1


def collect_on_gui_thread(app: QObject, interval_ms: int = INTERVAL_MS) -> GuiThreadCollector:
    """Install (once) the GUI-thread collector on ``app`` (the QApplication); returns it."""
    global _collector
    import shiboken6

    if _collector is None or not shiboken6.isValid(_collector):
        _collector = GuiThreadCollector(app, interval_ms)
    gc.disable()                     # also when someone re-enabled it (tests between two windows)
    return _collector
