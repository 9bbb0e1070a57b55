"""Erasure that reaches the copies FaceApp made: the registry of backups and exported crop folders, and the
replay of a deletion in each of them.

``faceapp db backup`` records every file it writes, ``identities show --crops-dir`` every folder it writes
clear crops into, in ``app_copies`` (schema 0004). Deleting a person (or one sample) commits in the live
gallery first; then the same deletion is replayed in every recorded backup that still exists, with
``secure_delete=ON`` followed by ``VACUUM`` and a WAL truncation, so that a backup made *before* the deletion
no longer holds the person's ciphertext, crops or templates either; their exported crop files
(``<identity id>_<crop id>.png``) are overwritten and removed. A copy that was moved or removed is reported as
missing (its path), one that belongs to another gallery or cannot be written as failed; the caller tells the
user. The deletion is queued (``pending_erasures``) in the deleting transaction and dropped once every copy
that exists had it, so a process killed between the commit and the replay is caught up by the next deletion.
Copies made outside FaceApp (cp, rsync, disk images) are not known to it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from faceapp.core.files import shred_file
from faceapp.storage.engine import checkpoint_truncate
from faceapp.storage.schema import AppCopy, GalleryKey, PendingErasure
from faceapp.storage.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Erasure:
    """What one deletion removed: an identity (``identity_id``) or a sample (``template_id`` and its ``crop_id``).
    Kept in ``pending_erasures`` as these ids (never as SQL) until every recorded copy had it."""

    identity_id: int | None = None
    forget_audit: bool = False
    template_id: int | None = None
    crop_id: int | None = None

    def statements(self) -> list[tuple[str, dict[str, object]]]:
        """The SQL that removes it from a copy of the gallery."""
        if self.identity_id is not None:
            forget = ", identity_name = NULL, details_json = NULL" if self.forget_audit else ""
            ids = {"id": int(self.identity_id)}
            return [("DELETE FROM templates WHERE identity_id = :id", ids),
                    ("DELETE FROM crops WHERE identity_id = :id", ids),
                    (f"UPDATE audit_events SET identity_id = NULL{forget} WHERE identity_id = :id", ids),
                    ("DELETE FROM identities WHERE id = :id", ids)]
        if self.crop_id is not None:
            crop = {"crop": int(self.crop_id)}
            return [("DELETE FROM templates WHERE crop_id = :crop", crop), ("DELETE FROM crops WHERE id = :crop", crop)]
        return [("DELETE FROM templates WHERE id = :id", {"id": int(self.template_id or 0)})]

    def crop_files(self) -> str:
        """The glob of its exported crop files (``<identity id>_<crop id>.png``); empty when it has none."""
        if self.identity_id is not None:
            return f"{int(self.identity_id)}_*.png"
        return f"*_{int(self.crop_id)}.png" if self.crop_id is not None else ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Erasure":
        data = json.loads(text)
        return cls(**{name: data.get(name) for name in ("identity_id", "template_id", "crop_id")},
                   forget_audit=bool(data.get("forget_audit")))


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


def queue_erasure(session: Session, erasure: Erasure) -> None:
    """In the deleting transaction: remember ``erasure`` until every recorded copy had it, so that a crash
    between the commit and the replay is caught up by the next deletion (or ``replay_pending``)."""
    if session.scalar(select(AppCopy.id).limit(1)) is not None:
        session.add(PendingErasure(plan=erasure.to_json()))


def pending_count(session: Session) -> int:
    """Erasures not yet replayed in every recorded copy (``faceapp db check``)."""
    return int(session.scalar(select(func.count()).select_from(PendingErasure)) or 0)


def replay_pending(uow: UnitOfWork) -> BackupErasure:
    """Replay every pending erasure in every recorded copy that still exists (after the deletion committed);
    they stay pending while a copy that exists could not be written, and are retried next time."""
    def read(session: Session) -> tuple[list[tuple[int, Erasure]], list[tuple[str, str]], str | None]:
        pending = [(row.id, Erasure.from_json(row.plan))
                   for row in session.scalars(select(PendingErasure).order_by(PendingErasure.id))]
        copies = [(k, p) for k, p in session.execute(select(AppCopy.kind, AppCopy.path).order_by(AppCopy.id))]
        return pending, copies, session.scalar(select(GalleryKey.gallery_id))

    pending, copies, gallery_id = uow.read(read)
    outcome = BackupErasure()
    if not pending:
        return outcome
    erasures = [erasure for _, erasure in pending]
    for kind, path in copies:
        if not (Path(path).is_file() if kind == "backup" else Path(path).is_dir()):
            outcome.missing.append(path)
            continue
        try:
            if kind == "backup":
                _erase_in_file(Path(path), erasures, gallery_id)
            else:
                for pattern in filter(None, (erasure.crop_files() for erasure in erasures)):
                    for crop_file in sorted(Path(path).glob(pattern)):
                        shred_file(crop_file)
            outcome.erased.append(path)
        except (sqlite3.Error, OSError, ValueError) as error:
            outcome.failed.append(f"{path}: {error}")
    if not outcome.failed:
        done = [row_id for row_id, _ in pending]
        uow.write(lambda session: session.execute(delete(PendingErasure).where(PendingErasure.id.in_(done))))
        checkpoint_truncate(uow.engine)                 # the live WAL stays empty after an erasure
    if outcome.missing or outcome.failed:
        log.warning("erasure not replayed in %d cop(ies): %s", len(outcome.missing) + len(outcome.failed),
                    "; ".join(outcome.missing + outcome.failed))
    return outcome


def _erase_in_file(path: Path, erasures: list[Erasure], gallery_id: str | None) -> None:
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
            for erasure in erasures:
                for statement, params in erasure.statements():
                    connection.execute(statement, params)
            connection.execute("COMMIT")
        except sqlite3.Error:
            connection.execute("ROLLBACK")
            raise
        connection.execute("VACUUM")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        connection.close()
