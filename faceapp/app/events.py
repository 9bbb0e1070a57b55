"""Plain observer lists for the page models (no Qt): ``model.changed.connect(callback)``.

A Qt view connects its slots; a test appends to a list. Callbacks run on the thread that emits, so a
model's owner decides where use cases run (the GUI adapter runs slow ones on workers and applies their
results on the GUI thread).
"""

from __future__ import annotations

import inspect
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


def run_now(func: Callable[..., Any], *args: Any, on_result: Callable[[Any], None] | None = None,
            on_progress: Callable[[Any], None] | None = None, on_finished: Callable[[], None] | None = None,
            on_error: Callable[[BaseException], None] | None = None, on_cancelled: Callable[[], None] | None = None,
            stop_token: Any = None, context: str = "", **kwargs: Any) -> Any:
    """A runner with the signature of ``AppContext.run`` (and of the GUI's job panels: ``on_error``,
    ``on_cancelled``) that does the work at once on the caller's thread (tests, scripts): a function's
    result, or a progress generator run to its end (each event to ``on_progress``, its return value to
    ``on_result``); a ``cancel`` parameter gets a fresh CancelToken. Errors go to ``on_error`` when given,
    a CancelledError to ``on_cancelled`` when given; otherwise they propagate (the GUI's runner reports
    them in the window instead)."""
    from faceapp.core.errors import CancelledError
    from faceapp.core.progress import CancelToken

    try:
        return _run_now(func, args, kwargs, on_result, on_progress, CancelToken)
    except CancelledError:
        if on_cancelled is None:
            raise
        on_cancelled()
    except Exception as error:  # noqa: BLE001 - handed to on_error
        if on_error is None:
            raise
        on_error(error)
    finally:
        if on_finished is not None:
            on_finished()
    return None


def _run_now(func: Callable[..., Any], args: tuple, kwargs: dict[str, Any], on_result: Any, on_progress: Any,
             token: type) -> Any:
    if "cancel" not in kwargs:
        try:
            if "cancel" in inspect.signature(func).parameters:
                kwargs["cancel"] = token()
        except (TypeError, ValueError):     # a builtin without a signature
            pass
    result = func(*args, **kwargs)
    if inspect.isgenerator(result):
        generator = result
        while True:
            try:
                event = next(generator)
            except StopIteration as stop:
                result = stop.value
                break
            if on_progress is not None:
                on_progress(event)
    if on_result is not None:
        on_result(result)
    return result
