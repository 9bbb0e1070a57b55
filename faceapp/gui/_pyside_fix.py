"""Work around PySide6 6.12's reference-count bug on Python 3.11.

PySide6/shiboken6 6.12.0 (abi3 wheels) return ``None`` from void methods and ``True`` from
``Signal.emit`` without taking a reference, as if those singletons were immortal (they are from
Python 3.12, PEP 683). On Python 3.10/3.11 every ``label.setText(...)``, ``processEvents()`` or
``signal.emit(...)`` therefore drops one reference to ``None``/``True``/``False``, and after a few
thousand calls the interpreter aborts with "Fatal Python error: none_dealloc". 6.11.3 does not do it.

pyproject.toml excludes 6.12.0; this guard protects an environment that has it anyway (the fix is applied
only when the installed shiboken6 is 6.12.x). The fix does what PEP 683 does: it gives the three singletons a reference count so large that the
leak can never bring it to zero. They are never deallocated anyway, so nothing else changes.
"""

from __future__ import annotations

import ctypes
import sys

_BOOST = 1 << 42
_applied = False


def affected_version() -> bool:
    """True when the installed shiboken6 is a 6.12 release (the ones with the bug)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shiboken6").startswith("6.12")
    except PackageNotFoundError:
        return False


def immortalise_singletons(force: bool = False) -> bool:
    """Raise the refcounts of None, True and False on CPython < 3.12 when the installed PySide6 has the
    bug (or ``force``); True if it did so (idempotent)."""
    global _applied
    if _applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if not (force or affected_version()):
        return False
    if hasattr(sys, "gettotalrefcount"):  # debug build: ob_refcnt is not the first field
        return False
    for obj in (None, True, False):
        refcnt = ctypes.c_ssize_t.from_address(id(obj))
        refcnt.value += _BOOST
    _applied = True
    return True
