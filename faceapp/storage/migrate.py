"""Schema versions of the identity store, applied with Alembic's command API (no alembic.ini needed).

On open, a database at an older revision is upgraded in one transaction; an empty database gets the
whole schema; a database stamped with a revision this FaceApp does not know (made by a newer version)
is refused with a clear message, and so is a non-empty database that is not a FaceApp store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from faceapp.core.errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")


class SchemaError(DatabaseError):
    """The database's schema is unusable as is; the message reads after the database's name."""


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against this FaceApp's migrations."""

    current: str | None          # revision stamped in the database (None: empty database)
    head: str                    # newest revision this FaceApp knows
    known: tuple[str, ...]       # every revision this FaceApp knows, oldest first

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def newer(self) -> bool:
        """The database was written by a FaceApp with migrations this one lacks."""
        return self.current is not None and self.current not in self.known


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations; ``connection`` is handed to env.py."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def known_revisions() -> tuple[str, ...]:
    """All revisions, oldest first."""
    return tuple(reversed([script.revision for script in _script().walk_revisions()]))


def head_revision() -> str:
    """The newest revision."""
    head = _script().get_current_head()
    assert head is not None, "no migrations found"
    return head


def schema_status(connection: Connection) -> SchemaStatus:
    """Read the stamped revision; raise DatabaseError for a non-empty database that is not FaceApp's."""
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
        if tables:
            shown = ", ".join(sorted(tables)[:5])
            raise SchemaError(f"is not a FaceApp database (it has other tables: {shown}); pass another --db")
    return SchemaStatus(current=current, head=head_revision(), known=known_revisions())


def check_not_newer(status: SchemaStatus) -> None:
    """Refuse a database written by a newer FaceApp."""
    if status.newer:
        raise SchemaError(
            f"has schema revision {status.current!r}, newer than this FaceApp knows (newest {status.head!r}): "
            "upgrade FaceApp, or use another database"
        )


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade within the caller's transaction (the caller commits)."""
    command.upgrade(alembic_config(connection), revision)


def ensure_schema(read_engine: Engine, write_engine: Engine, *, allow_upgrade: bool = True) -> SchemaStatus:
    """Bring the database to the head revision (or check it), returning the status before any change.

    The revision is first read without a write lock; only when an upgrade is due is it re-read under
    ``BEGIN IMMEDIATE`` and applied in that same transaction, so two processes opening a new database at
    once do not both create the schema.
    """
    with read_engine.connect() as connection:
        status = schema_status(connection)
    check_not_newer(status)
    if status.up_to_date:
        return status
    if not allow_upgrade:
        raise SchemaError(
            f"has schema revision {status.current or 'none (empty)'}, this FaceApp needs {status.head!r}: "
            "run `faceapp db upgrade`"
        )
    with write_engine.connect() as connection, connection.begin():
        locked_status = schema_status(connection)
        check_not_newer(locked_status)
        if not locked_status.up_to_date:
            upgrade(connection)
    return status
