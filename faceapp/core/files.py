"""Files: written so that a crash or a cancel never leaves a half-written one behind; hashed in chunks."""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file handle whose content appears at ``path`` only when the block ends without error: written
    to a unique temporary file beside it, fsynced, then renamed into place (removed on any error)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through ``atomic_file``; returns ``path``."""
    with atomic_file(path) as fh:
        fh.write(data)
    return Path(path)


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk``-byte blocks (model files, downloads, teachers)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def private_dir(path: str | Path) -> Path:
    """``path`` as a folder only its owner can enter (0700), created with its missing parents.

    A folder that already exists is tightened to 0700 as well: callers use this only for folders FaceApp owns
    (its data, key and cache folders), never for a folder the user chose for an export."""
    path = Path(path)
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if os.name == "posix" and path.stat().st_mode & 0o777 != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)
    return path


def restrict_file(path: str | Path) -> None:
    """Make an existing file readable and writable by its owner only (0600); missing files are ignored."""
    path = Path(path)
    if os.name == "posix" and path.exists() and path.stat().st_mode & 0o777 != PRIVATE_FILE_MODE:
        path.chmod(PRIVATE_FILE_MODE)


def create_private_file(path: str | Path) -> Path:
    """Create ``path`` empty with mode 0600 when it does not exist yet (so that what is written into it later,
    e.g. by SQLite, is never readable by others even for a moment); an existing file is restricted to 0600."""
    path = Path(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        restrict_file(path)
    return path


def shred_file(path: str | Path, chunk: int = 1 << 20) -> None:
    """Overwrite a file's bytes with zeros, flush them to disk, then remove it (for files that held faces or keys).

    This clears the bytes in place on ordinary filesystems; copy-on-write or journalling filesystems and SSD
    wear levelling may keep older blocks, which only full-disk encryption covers."""
    path = Path(path)
    if not path.exists():
        return
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        zeros = bytes(min(chunk, max(size, 1)))
        for start in range(0, size, chunk):
            handle.write(zeros[:min(chunk, size - start)])
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()
