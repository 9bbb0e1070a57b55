"""Printing results as human text or JSON (``--json``), and progress lines on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.core.progress import Progress


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "value") and hasattr(obj, "name"):  # Enum
        return obj.value
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def to_json(data: Any) -> str:
    """JSON text for ``data`` (numpy arrays, paths, enums and datetimes converted)."""
    return json.dumps(data, default=_default, indent=2, ensure_ascii=False)


def emit(args: argparse.Namespace, data: Any, text: str | None = None) -> None:
    """Print ``data`` as JSON when ``--json`` was given, else ``text`` (or a JSON dump when text is None)."""
    if getattr(args, "json", False) or text is None:
        print(to_json(data))
    else:
        print(text)


def print_progress(event: Progress, *, stream: Any = None) -> None:
    """One progress line on stderr: stage, done/total, ETA, metrics, message."""
    stream = stream or sys.stderr
    parts = [f"[{event.stage}]"]
    if event.total:
        parts.append(f"{event.done}/{event.total}")
    elif event.done:
        parts.append(str(event.done))
    if event.eta_s is not None:
        parts.append(f"eta {event.eta_s:,.0f}s")
    for key, value in event.metrics.items():
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    if event.message:
        parts.append(event.message)
    print(" ".join(parts), file=stream, flush=True)
