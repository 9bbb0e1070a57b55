"""Alembic migrations: they build exactly the ORM schema, upgrade an older database on open, refuse a
newer or foreign one, and round-trip down and up."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from faceapp.core.errors import DatabaseError
from faceapp.storage import Store
from faceapp.storage.engine import create_store_engine, parse_url, resolve_url
from faceapp.storage.migrate import known_revisions, script_directory, upgrade
from faceapp.storage.schema import Base


def _at_revision(path: Path, revision: str) -> None:
    """Create a database at ``revision`` with one identity, one crop and one template, like an old FaceApp."""
    engine = create_store_engine(parse_url(resolve_url(path)))
    with engine.connect() as connection, connection.begin():
        upgrade(connection, revision)
        connection.execute(text("INSERT INTO identities (id, name, created_at, updated_at) "
                                "VALUES (1, 'Old Timer', '2024-01-01 00:00:00', '2024-01-01 00:00:00')"))
        connection.execute(text("INSERT INTO models (model_id, name, embedding_dim, registered_at) "
                                "VALUES ('m@1', 'm', 4, '2024-01-01 00:00:00')"))
        connection.execute(text("INSERT INTO crops (id, identity_id, png, width, height, created_at) "
                                "VALUES (1, 1, x'00', 1, 1, '2024-01-01 00:00:00')"))
        connection.execute(text("INSERT INTO templates (identity_id, model_id, crop_id, dim, embedding, created_at) "
                                "VALUES (1, 'm@1', 1, 4, :e, '2024-01-01 00:00:00')"), {"e": b"\x00" * 16})
    engine.dispose()


def test_migrations_build_exactly_the_orm_schema(store: Store) -> None:
    scripts = script_directory()
    assert known_revisions() == tuple(reversed([s.revision for s in scripts.walk_revisions()]))
    assert known_revisions()[-1] == scripts.get_current_head() == "0004"
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_older_database_is_upgraded_on_open_keeping_its_data(db_path: Path) -> None:
    _at_revision(db_path, "0001")
    with sqlite3.connect(db_path) as raw:
        assert "gallery_state" not in {r[0] for r in raw.execute("SELECT name FROM sqlite_master")}
    with Store(db_path) as store:
        assert store.schema_before.current == "0001" and store.upgraded
        assert store.schema_status().current == "0004"
        info = store.identities.get("Old Timer")
        assert info.template_counts == {"m@1": 1} and info.crop_count == 1
        assert store.revision() == 0
        store.identities.add("New")                       # revision counter from 0002 works
        assert store.revision() == 1
        with store.engine.connect() as connection:
            indexes = {i["name"] for i in inspect(connection).get_indexes("audit_events")}
    assert {"ix_audit_events_time", "ix_audit_events_operation_time"} <= indexes


def test_require_mode_refuses_an_older_database_with_the_fix(db_path: Path) -> None:
    _at_revision(db_path, "0001")
    with pytest.raises(DatabaseError, match="faceapp db upgrade") as caught:
        Store(db_path, schema="require")
    assert str(db_path) in str(caught.value)
    with Store(db_path, schema="ignore") as store:
        assert store.schema_status().current == "0001"
        assert store.upgrade().current == "0001"
        assert store.schema_status().up_to_date


def test_newer_database_is_refused(db_path: Path) -> None:
    Store(db_path).close()
    with sqlite3.connect(db_path) as raw:
        raw.execute("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(DatabaseError, match="newer than this FaceApp") as caught:
        Store(db_path)
    assert "0099" in str(caught.value) and str(db_path) in str(caught.value)


def test_foreign_sqlite_database_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as raw:
        raw.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    with pytest.raises(DatabaseError, match="not a FaceApp database"):
        Store(db_path)


def test_downgrade_and_upgrade_round_trip(db_path: Path) -> None:
    from alembic import command

    from faceapp.storage.migrate import alembic_config

    with Store(db_path) as store:
        with store.uow.write_engine.connect() as connection, connection.begin():
            command.downgrade(alembic_config(connection), "base")
        with store.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
        store.upgrade()
        assert store.schema_status().up_to_date
        store.identities.add("Back")
