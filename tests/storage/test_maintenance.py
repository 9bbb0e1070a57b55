"""``faceapp db`` helpers: online backup of a store in use, and the consistency check."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from faceapp.core.errors import DatabaseError, InputFileError
from faceapp.storage import NewIdentity, Store
from faceapp.storage.maintenance import backup, check


def test_backup_copies_a_store_in_use(store: Store, make_samples, model, tmp_path: Path) -> None:
    store.templates.enroll(NewIdentity("Alice"), make_samples(3), model)
    reader = sqlite3.connect(store.path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM templates").fetchone()       # an open read transaction elsewhere
    seen = []
    target = backup(store, tmp_path / "copy.db", progress=lambda done, total: seen.append((done, total)))
    reader.close()
    assert seen and seen[-1][0] == seen[-1][1]
    with Store(target) as copy:
        assert copy.identities.get("Alice").template_count == 3
        assert check(copy).ok
    with pytest.raises(InputFileError, match="already exists"):
        backup(store, target)
    with pytest.raises(InputFileError, match="database itself"):
        backup(store, store.path, overwrite=True)
    with pytest.raises(InputFileError, match="does not exist"):
        backup(store, tmp_path / "missing" / "copy.db")


def test_backup_refuses_non_sqlite_urls(tmp_path: Path) -> None:
    class FakeStore:     # only the attributes backup() reads: is_sqlite and where
        is_sqlite = False
        path = None
        where = "postgresql://host/faceapp"

    with pytest.raises(DatabaseError, match="SQLite databases only"):
        backup(FakeStore(), tmp_path / "x.db")  # type: ignore[arg-type]


def test_check_reports_a_clean_store_and_finds_orphans(store: Store, make_samples, model) -> None:
    store.templates.enroll(NewIdentity("Alice"), make_samples(2), model)
    report = check(store)
    assert report.ok and report.integrity == "ok" and report.identities == 1 and report.crops == 2
    assert report.templates_by_model == {model.model_id: 2}
    with sqlite3.connect(store.path) as raw:                  # foreign keys are off in a bare sqlite3 session
        raw.execute("DELETE FROM identities")
    report = check(store)
    assert not report.ok
    assert report.orphan_templates == 2 and report.orphan_crops == 2 and report.foreign_key_violations == 5   # + the enrol audit row
    assert any("orphan templates: 2" in problem for problem in report.problems)
