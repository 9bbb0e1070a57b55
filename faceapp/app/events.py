"""Plain observer lists for the page models (no Qt): ``model.changed.connect(callback)``.

A Qt view connects its slots; a test appends to a list. Callbacks run on the thread that emits, so a
model's owner decides where use cases run (the GUI adapter runs slow ones on workers and applies their
results on the GUI thread).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

log = logging.getLogger(__name__)


class Event:
    """A named list of callbacks; ``emit(*args)`` calls each in the order they were connected."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``callback`` on every ``emit``; returns it (usable as a decorator)."""
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Stop calling ``callback`` (no error when it was not connected)."""
        try:
            self._callbacks.remove(callback)
        except ValueError:
            pass

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            callback(*args)

    def __len__(self) -> int:
        return len(self._callbacks)

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {len(self._callbacks)} callbacks)"
