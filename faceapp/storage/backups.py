"""Erasure that reaches the copies FaceApp made: the registry of backups and exported crop folders, and the
replay of a deletion in each of them.

``faceapp db backup`` records every file it writes, ``identities show --crops-dir`` every folder it writes
clear crops into, in ``app_copies`` (schema 0004). Deleting a person (or one sample) commits in the live
gallery first; then the same deletion is replayed in every recorded backup that still exists, with
``secure_delete=ON`` followed by ``VACUUM`` and a WAL truncation, so that a backup made *before* the deletion
no longer holds the person's ciphertext, crops or templates either; their exported crop files
(``<identity id>_<crop id>.png``) are overwritten and removed. A copy that was moved or removed is reported as
missing (its path), one that belongs to another gallery or cannot be written as failed; the caller tells the
user. Copies made outside FaceApp (cp, rsync, disk images) are not known to it.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceapp.core.files import shred_file
from faceapp.storage.schema import AppCopy, GalleryKey
from faceapp.storage.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Erasure:
    """The SQL that removes one person or sample, replayed as it is in each backup."""

    statements: tuple[tuple[str, dict[str, object]], ...]
    crop_files: str                              # glob of the exported crop files of what is erased


def identity_erasure(identity_id: int, *, forget_audit: bool) -> Erasure:
    """What deleting identity ``identity_id`` removes (its templates, crops, row; its audit rows unlinked)."""
    forget = ", identity_name = NULL, details_json = NULL" if forget_audit else ""
    ids = {"id": int(identity_id)}
    return Erasure((("DELETE FROM templates WHERE identity_id = :id", ids),
                    ("DELETE FROM crops WHERE identity_id = :id", ids),
                    (f"UPDATE audit_events SET identity_id = NULL{forget} WHERE identity_id = :id", ids),
                    ("DELETE FROM identities WHERE id = :id", ids)), f"{int(identity_id)}_*.png")


def sample_erasure(template_id: int, crop_id: int | None) -> Erasure:
    """What deleting one sample removes: its crop and every model's template of it (or the crop-less template)."""
    if crop_id is None:
        return Erasure((("DELETE FROM templates WHERE id = :id", {"id": int(template_id)}),), "")
    crop = {"crop": int(crop_id)}
    return Erasure((("DELETE FROM templates WHERE crop_id = :crop", crop), ("DELETE FROM crops WHERE id = :crop", crop)),
                   f"*_{int(crop_id)}.png")


@dataclass
class BackupErasure:
    """Where a deletion was replayed: copies erased, missing (moved or removed), failed (path: reason)."""

    erased: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def register_copy(uow: UnitOfWork, path: Path, kind: str) -> None:
    """Record a backup file (``kind`` "backup") or a crops folder ("crops") FaceApp wrote, so that later
    erasures reach it."""
    text = str(Path(path).resolve())

    def work(session: Session) -> None:
        if session.scalar(select(AppCopy.id).where(AppCopy.path == text)) is None:
            session.add(AppCopy(path=text, kind=kind))

    uow.write(work)


def recorded_copies(uow: UnitOfWork) -> tuple[list[tuple[str, str]], str | None]:
    """The recorded (kind, path) copies and the gallery id (None for a gallery kept in clear)."""
    return uow.read(lambda session: ([(k, p) for k, p in session.execute(
        select(AppCopy.kind, AppCopy.path).order_by(AppCopy.id))], session.scalar(select(GalleryKey.gallery_id))))


def erase_in_backups(uow: UnitOfWork, erasure: Erasure) -> BackupErasure:
    """Replay ``erasure`` in every recorded copy that still exists (after the live deletion committed)."""
    copies, gallery_id = recorded_copies(uow)
    outcome = BackupErasure()
    for kind, path in copies:
        if not (Path(path).is_file() if kind == "backup" else Path(path).is_dir()):
            outcome.missing.append(path)
            continue
        try:
            if kind == "backup":
                _erase_in_file(Path(path), erasure, gallery_id)
            elif erasure.crop_files:
                for crop_file in sorted(Path(path).glob(erasure.crop_files)):
                    shred_file(crop_file)
            outcome.erased.append(path)
        except (sqlite3.Error, OSError, ValueError) as error:
            outcome.failed.append(f"{path}: {error}")
    if outcome.missing or outcome.failed:
        log.warning("erasure not replayed in %d cop(ies): %s", len(outcome.missing) + len(outcome.failed),
                    "; ".join(outcome.missing + outcome.failed))
    return outcome


def _erase_in_file(path: Path, erasure: Erasure, gallery_id: str | None) -> None:
    connection = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        connection.execute("PRAGMA secure_delete=ON")
        connection.execute("PRAGMA temp_store=MEMORY")         # VACUUM's scratch copy never lands in a temp file
        connection.execute("PRAGMA foreign_keys=ON")
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"identities", "crops", "templates"} <= tables:
            raise ValueError("not a FaceApp gallery (the file was replaced)")
        copy_id = connection.execute("SELECT gallery_id FROM gallery_keys").fetchone() if "gallery_keys" in tables else None
        if gallery_id is not None and copy_id is not None and copy_id[0] != gallery_id:
            raise ValueError("a backup of another gallery (the file was replaced)")
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement, params in erasure.statements:
                connection.execute(statement, params)
            connection.execute("COMMIT")
        except sqlite3.Error:
            connection.execute("ROLLBACK")
            raise
        connection.execute("VACUUM")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        connection.close()
