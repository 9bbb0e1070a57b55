"""Clear errors for databases that are read-only, locked, missing, damaged or given by a bad URL.

Read-only is tested with SQLite's ``mode=ro`` URI: the tests may run as root, whom ``chmod`` does not stop.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from faceapp.core.errors import DatabaseError
from faceapp.storage import Store
from faceapp.storage.engine import resolve_url


def test_bare_paths_become_sqlite_urls(tmp_path: Path) -> None:
    assert resolve_url(tmp_path / "a.db") == f"sqlite:///{tmp_path / 'a.db'}"
    assert resolve_url("postgresql://host/db") == "postgresql+psycopg://host/db"      # psycopg 3, not psycopg2
    assert resolve_url(None).startswith("sqlite:///")        # $FACEAPP_DB unset in tests: the data dir


def test_read_only_database_reads_but_refuses_writes_clearly(db_path: Path) -> None:
    with Store(db_path) as store:
        store.identities.add("Alice")
    with Store(f"sqlite:///file:{db_path}?mode=ro&uri=true") as read_only:
        assert read_only.where == str(db_path)
        assert [i.name for i in read_only.identities.list()] == ["Alice"]
        with pytest.raises(DatabaseError, match="read-only") as caught:
            read_only.identities.add("Bob")
    assert str(db_path) in str(caught.value) and caught.value.exit_code == 6


def test_read_only_database_that_needs_creating_fails_clearly(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()                       # exists, no schema yet, opened read-only
    with pytest.raises(DatabaseError, match="read-only"):
        Store(f"sqlite:///file:{empty}?mode=ro&uri=true")


def test_write_lock_held_by_another_connection_gives_a_clear_error(db_path: Path) -> None:
    store = Store(db_path, busy_timeout_s=0.2, retries=1)
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")                 # holds the write lock
        with pytest.raises(DatabaseError, match="locked by another program") as caught:
            store.identities.add("Alice")
        assert str(db_path) in str(caught.value)
        assert store.identities.list() == []             # WAL: reading still works meanwhile
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.identities.add("Alice").name == "Alice"  # and writing works once released
    store.close()


def test_exclusive_lock_blocks_opening_with_a_clear_error(db_path: Path) -> None:
    Store(db_path).close()
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("UPDATE gallery_state SET revision = revision + 1")
        with pytest.raises(DatabaseError, match="locked"):
            Store(db_path, busy_timeout_s=0.2, retries=0)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_busy_writer_waits_for_a_short_lock_instead_of_failing(db_path: Path) -> None:
    import threading

    store = Store(db_path, busy_timeout_s=5.0)
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    released: list[str] = []

    def release() -> None:
        released.append("commit")                         # recorded before the lock is let go
        other.execute("COMMIT")

    releaser = threading.Timer(0.3, release)
    releaser.start()
    store.identities.add("Alice")                         # waits on the busy timeout, then succeeds
    waited_for_the_release = released == ["commit"]       # read before joining: ordered by the lock, not a clock
    releaser.join()
    other.close()
    assert waited_for_the_release
    assert store.identities.count() == 1
    store.close()


@pytest.mark.parametrize("case, match", [
    ("missing-folder", "cannot open database file"),
    ("garbage", "damaged or not a SQLite database"),
    ("bad-url", "not valid"),
    ("bad-driver", "cannot use database"),
])
def test_unusable_databases_name_the_problem(tmp_path: Path, case: str, match: str) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database " * 100)
    url = {"missing-folder": str(tmp_path / "nope" / "x.db"), "garbage": str(garbage), "bad-url": "no such://",
           "bad-driver": "postgresql+nosuchdriver://user:secret@host/db"}[case]
    with pytest.raises(DatabaseError, match=match) as caught:
        Store(url)
    assert "secret" not in str(caught.value)
