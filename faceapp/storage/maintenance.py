"""Store maintenance: online backup of a SQLite store, a consistency check, encryption and key rotation
(``faceapp db``).

Backups are copies of the sealed gallery (0600), recorded in the gallery (``app_copies``): deleting a person
later replays the deletion in every recorded backup still in place (``faceapp.storage.backups``).
``rotate_key(full=True)`` makes every older copy unreadable with the current key files (their key-encryption
key is destroyed); with a passphrase, the old passphrase still opens them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import case, func, select, text
from sqlalchemy.orm import Session, aliased

from faceapp.core.errors import DatabaseError, InputFileError
from faceapp.core.files import create_private_file
from faceapp.storage.backups import pending_count, register_copy
from faceapp.storage.crypto import OVERHEAD, encryption_counts
from faceapp.storage.migrate import KNOWN_REVISIONS
from faceapp.storage.engine import checkpoint_truncate
from faceapp.storage.keys import KeyOptions
from faceapp.storage.schema import Crop, EmbeddingModel, Identity, Template
from faceapp.storage.store import Store


@dataclass
class CheckReport:
    """What ``faceapp db check`` found; ``ok`` when nothing is wrong."""

    database: str
    schema_revision: str | None
    head_revision: str
    integrity: str = "not checked"
    foreign_key_violations: int = 0
    orphan_templates: int = 0            # templates whose identity is gone
    orphan_crops: int = 0                # crops whose identity is gone
    dangling_crop_links: int = 0         # templates pointing at a missing crop
    dimension_mismatches: int = 0        # templates whose dim differs from their model's
    damaged_embeddings: int = 0          # templates whose byte length is not 4 * dim
    identities: int = 0
    crops: int = 0
    templates_by_model: dict[str, int] = field(default_factory=dict)
    encryption: dict[str, Any] = field(default_factory=dict)   # key source/version, sealed/clear/stale rows
    newer: bool = False                  # written by a FaceApp with migrations this one lacks
    pending_erasures: int = 0            # deletions not yet replayed in every backup / crop folder FaceApp made

    @property
    def problems(self) -> list[str]:
        found = []
        if self.newer:
            found.append(f"schema revision {self.schema_revision} was written by a newer FaceApp (this one knows up "
                         f"to {self.head_revision}): upgrade FaceApp to use it - `faceapp db upgrade` cannot go back")
        elif self.schema_revision != self.head_revision:
            found.append(f"schema revision {self.schema_revision} is not the current {self.head_revision} "
                         "(run `faceapp db upgrade`)")
        if self.integrity not in ("ok", "not checked"):
            found.append(f"SQLite integrity check: {self.integrity}")
        if self.encryption.get("encrypted"):
            for name in ("crops_clear", "templates_clear", "crops_stale_key", "templates_stale_key"):
                if self.encryption.get(name):
                    found.append(f"{name.replace('_', ' ')}: {self.encryption[name]} (run `faceapp db rotate-key --full`)"
                                 if "clear" in name else f"{name.replace('_', ' ')}: {self.encryption[name]} (sealed "
                                 "with a data key that was rotated away: unreadable, delete those samples)")
        if self.pending_erasures:
            found.append(f"pending erasures: {self.pending_erasures} (a backup or crop folder FaceApp made could not "
                         "be written when people were deleted; make it writable: the next deletion retries)")
        for name in ("foreign_key_violations", "orphan_templates", "orphan_crops", "dangling_crop_links",
                     "dimension_mismatches", "damaged_embeddings"):
            if getattr(self, name):
                found.append(f"{name.replace('_', ' ')}: {getattr(self, name)}")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "problems": self.problems}


def _count(session: Session, query: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def consistency_counts(session: Session) -> dict[str, int]:
    """Orphans and mismatches found by query (the "no orphans" check used by tests and ``db check``)."""
    owner = aliased(Identity)
    crop = aliased(Crop)
    return {
        "orphan_templates": _count(session, select(Template.id).outerjoin(owner, Template.identity_id == owner.id)
                                   .where(owner.id.is_(None))),
        "orphan_crops": _count(session, select(Crop.id).outerjoin(owner, Crop.identity_id == owner.id)
                               .where(owner.id.is_(None))),
        "dangling_crop_links": _count(session, select(Template.id).outerjoin(crop, Template.crop_id == crop.id)
                                      .where(Template.crop_id.is_not(None), crop.id.is_(None))),
        "dimension_mismatches": _count(session, select(Template.id).join(
            EmbeddingModel, Template.model_id == EmbeddingModel.model_id).where(Template.dim != EmbeddingModel.embedding_dim)),
        "damaged_embeddings": _count(session, select(Template.id).where(
            func.length(Template.embedding) != 4 * Template.dim + case((Template.key_version.is_(None), 0), else_=OVERHEAD))),
    }


def check(store: Store) -> CheckReport:
    """Schema revision, SQLite integrity and foreign keys, orphans, dimension mismatches, counts."""
    status = store.schema_status()
    report = CheckReport(database=store.where, schema_revision=status.current, head_revision=status.head,
                         newer=status.newer)
    if status.current is None or status.newer:       # nothing to count, or tables this FaceApp does not know
        return report

    def work(session: Session) -> None:
        if store.is_sqlite:
            report.integrity = "; ".join(str(r[0]) for r in session.execute(text("PRAGMA integrity_check")))
            report.foreign_key_violations = len(session.execute(text("PRAGMA foreign_key_check")).all())
        for key, value in consistency_counts(session).items():
            setattr(report, key, value)
        report.identities = int(session.scalar(select(func.count()).select_from(Identity)) or 0)
        report.crops = int(session.scalar(select(func.count()).select_from(Crop)) or 0)
        report.templates_by_model = {m: int(c) for m, c in session.execute(
            select(Template.model_id, func.count()).group_by(Template.model_id))}
        if status.current in KNOWN_REVISIONS[2:]:          # key_version columns exist from 0003 on
            report.encryption = encryption_counts(session.connection())
        if status.current in KNOWN_REVISIONS[3:]:          # the copy registry exists from 0004 on
            report.pending_erasures = pending_count(session)

    store.uow.read(work)
    return report


def backup(store: Store, destination: str | Path, *, overwrite: bool = False,
           progress: Callable[[int, int], None] | None = None) -> Path:
    """Copy a SQLite store to ``destination`` with SQLite's online backup API (safe while in use)."""
    if not store.is_sqlite or store.path is None:
        raise DatabaseError(f"backup copies SQLite databases only; {store.where} is not one "
                            "(use the server's tools, e.g. pg_dump, or `faceapp gallery export`)")
    target = Path(destination).expanduser().resolve()
    if target == store.path.resolve():
        raise InputFileError(f"backup file {target} is the database itself: choose another path")
    if target.exists() and not overwrite:
        raise InputFileError(f"backup file {target} already exists: choose another path or remove it")
    if not target.parent.is_dir():
        raise InputFileError(f"backup folder {target.parent} does not exist")
    partial = create_private_file(target.with_name(target.name + ".partial"))   # 0600 before any byte lands
    raw = store.engine.raw_connection()
    try:
        source: sqlite3.Connection = raw.driver_connection  # type: ignore[assignment]
        with sqlite3.connect(partial) as copy:
            def report(_status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(total - remaining, total)
            source.backup(copy, pages=256, progress=report)
        copy.close()
        partial.replace(target)
        register_copy(store.uow, target, "backup")              # later erasures reach this copy too
    except sqlite3.Error as error:
        partial.unlink(missing_ok=True)
        raise DatabaseError(f"backup of {store.where} to {target} failed: {error}") from error
    finally:
        raw.close()
    return target


def encrypt(store: Store) -> dict[str, Any] | None:
    """Seal a gallery kept in clear (``faceapp db encrypt``) in one transaction; None when already encrypted."""
    from faceapp.storage.crypto import encrypt_gallery

    summary = store.uow.write(lambda session: encrypt_gallery(session.connection(), store.keys, store.where))
    store.vault.reset()
    checkpoint_truncate(store.engine)
    return summary


def rotate_key(store: Store, *, full: bool, new_keys: KeyOptions | None = None,
               unlinkable: bool | None = None) -> dict[str, Any]:
    """``faceapp db rotate-key``: re-wrap the data key (fast) or re-seal every row under a new one (full), in one
    transaction; the old key-encryption key is destroyed after the commit."""
    from faceapp.storage.crypto import rotate_key as rotate

    summary, forget_old = store.uow.write(
        lambda session: rotate(session.connection(), store.keys, store.where, full=full, new_options=new_keys,
                               unlinkable=unlinkable))
    forget_old()
    store.vault.reset()
    if new_keys is not None:
        store.keys = new_keys
    checkpoint_truncate(store.engine)
    return summary
