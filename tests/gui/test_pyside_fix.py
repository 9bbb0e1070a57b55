"""The PySide6 6.12 / Python 3.11 refcount workaround keeps None/True alive through many Qt calls."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

from faceapp.gui._pyside_fix import immortalise_singletons


class _Emitter(QObject):
    fired = Signal(object)


def test_many_void_calls_and_emits_do_not_exhaust_singletons(qapp):
    immortalise_singletons(force=True)  # idempotent; forced so the workaround itself is exercised on 6.11 too
    label = QLabel()
    emitter = _Emitter()
    emitter.fired.connect(lambda _value: None)
    for i in range(30000):   # far more than None's natural refcount on 3.11 (~5,000)
        label.setText(str(i))
        emitter.fired.emit(i)
        qapp.processEvents()
    assert label.text() == "29999"
    if sys.version_info < (3, 12):
        assert sys.getrefcount(None) > 1 << 40
        assert sys.getrefcount(True) > 1 << 40
