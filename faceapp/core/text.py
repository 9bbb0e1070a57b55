"""Showing text that came from outside (names, operators, notes, file names) without letting it act on the
terminal: escape codes, zero-width characters and bidi overrides are written as visible escapes."""

from __future__ import annotations


def visible(text: str | None) -> str:
    """``text`` with every non-printable character (controls such as ESC, format characters such as
    U+200B or U+202E, line separators) replaced by its backslash escape (``\\x1b``, ``\\u200b``);
    ordinary letters of any script are kept. None becomes ``-``."""
    if text is None:
        return "-"
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text))
