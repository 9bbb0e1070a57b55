"""GUI test setup: the PySide6 refcount fix is applied before any widget exists, and no worker thread
may outlive its test."""

from __future__ import annotations

import pytest

import faceapp.gui  # noqa: F401 - applies faceapp.gui._pyside_fix before Qt is used
from faceapp.gui.workers import active_workers, shutdown_workers


@pytest.fixture(autouse=True)
def _no_leftover_workers(qapp):  # noqa: ANN001 - pytest-qt's QApplication
    """Fail a test that leaves a worker running; cancel and join whatever is left."""
    yield
    still = [w for w in active_workers() if not w.wait(2.0)]
    ok = shutdown_workers(20.0)
    qapp.processEvents()
    assert ok, "a GUI worker did not stop within 20 s after the test"
    assert not still, f"{len(still)} worker(s) still running at the end of the test"
