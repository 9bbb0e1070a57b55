"""Fixtures for capture tests: a huge JPEG built once per module run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.capture.composed import write_large_jpeg


@pytest.fixture(scope="session")
def huge_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20000 x 20000 greyscale JPEG (about 5 MB on disk)."""
    return write_large_jpeg(tmp_path_factory.mktemp("huge") / "huge.jpg")
