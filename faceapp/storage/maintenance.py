"""Store maintenance: online backup of a SQLite store and a consistency check (``faceapp db``)."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, aliased

from faceapp.core.errors import DatabaseError, InputFileError
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
    newer: bool = False                  # written by a FaceApp with migrations this one lacks

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
        "damaged_embeddings": _count(session, select(Template.id).where(func.length(Template.embedding) != 4 * Template.dim)),
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
    partial = target.with_name(target.name + ".partial")
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
    except sqlite3.Error as error:
        partial.unlink(missing_ok=True)
        raise DatabaseError(f"backup of {store.where} to {target} failed: {error}") from error
    finally:
        raw.close()
    return target
