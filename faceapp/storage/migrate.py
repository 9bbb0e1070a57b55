"""Schema versions of the identity store, applied with Alembic's command API (no alembic.ini needed).

On open, a database at an older revision is upgraded in one transaction; an empty database gets the
whole schema; a database stamped with a revision this FaceApp does not know (made by a newer version)
is refused with a clear message, and so is a non-empty database that is not a FaceApp store.

Reading the stamped revision needs no Alembic (one query), and ``KNOWN_REVISIONS`` lists the scripts'
revisions (a test checks it against them), so Alembic is imported only when an upgrade is due: every
``faceapp`` command and the GUI start faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from faceapp.core.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
KNOWN_REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004")   # oldest first; the last one is the head
VERSION_TABLE = "alembic_version"
KEY_OPTIONS = "faceapp_key_options"     # config.attributes: the KeyOptions that revision 0003 encrypts with
WHERE = "faceapp_where"                 # config.attributes: the database's name for messages


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


def alembic_config(connection: Connection | None = None, attributes: dict[str, Any] | None = None) -> "Config":
    """An Alembic Config pointing at the packaged migrations; ``connection`` is handed to env.py, and
    ``attributes`` to the revisions (0003 reads the key options that encrypt the gallery)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    config.attributes.update(attributes or {})
    return config


def script_directory() -> "ScriptDirectory":
    """Alembic's view of the packaged revision scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def known_revisions() -> tuple[str, ...]:
    """All revisions, oldest first."""
    return KNOWN_REVISIONS


def head_revision() -> str:
    """The newest revision."""
    return KNOWN_REVISIONS[-1]


def stamped_revision(connection: Connection) -> str | None:
    """The revision in ``alembic_version`` (None for an empty database); SchemaError for a foreign one."""
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE not in tables:
        others = tables - {VERSION_TABLE}
        if others:
            shown = ", ".join(sorted(others)[:5])
            raise SchemaError(f"is not a FaceApp database (it has other tables: {shown}); pass another --db")
        return None
    rows = [row[0] for row in connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]
    if len(rows) > 1:
        raise SchemaError(f"is stamped with several schema revisions ({', '.join(rows)}); restore a backup")
    others = tables - {VERSION_TABLE}
    if not rows and others:
        shown = ", ".join(sorted(others)[:5])
        raise SchemaError(
            f"has FaceApp tables ({shown}) but an empty {VERSION_TABLE} table: its schema revision was lost, so "
            f"it can be neither used nor upgraded safely. Restore a backup; or, if this FaceApp made it, stamp it "
            f"again: sqlite3 FILE \"INSERT INTO {VERSION_TABLE} VALUES ('{head_revision()}')\"")
    return rows[0] if rows else None


def schema_status(connection: Connection) -> SchemaStatus:
    """Read the stamped revision; raise DatabaseError for a non-empty database that is not FaceApp's."""
    return SchemaStatus(current=stamped_revision(connection), head=head_revision(), known=known_revisions())


def check_not_newer(status: SchemaStatus) -> None:
    """Refuse a database written by a newer FaceApp."""
    if status.newer:
        raise SchemaError(
            f"has schema revision {status.current!r}, newer than this FaceApp knows (newest {status.head!r}): "
            "upgrade FaceApp, or use another database"
        )


def upgrade(connection: Connection, revision: str = "head", attributes: dict[str, Any] | None = None) -> None:
    """Upgrade within the caller's transaction (the caller commits)."""
    from alembic import command

    command.upgrade(alembic_config(connection, attributes), revision)


def ensure_schema(read_engine: Engine, write_engine: Engine, *, allow_upgrade: bool = True,
                  attributes: dict[str, Any] | None = None,
                  before_upgrade: Callable[[SchemaStatus], None] | None = None) -> SchemaStatus:
    """Bring the database to the head revision (or check it), returning the status before any change.

    The revision is first read without a write lock; only when an upgrade is due is it re-read under
    ``BEGIN IMMEDIATE`` and applied in that same transaction, so two processes opening a new database at
    once do not both create the schema. ``before_upgrade`` runs first (the Store's backup of a gallery about
    to be encrypted in place); ``attributes`` reach the revision scripts.
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
    if before_upgrade is not None:
        before_upgrade(status)
    with write_engine.connect() as connection, connection.begin():
        locked_status = schema_status(connection)
        check_not_newer(locked_status)
        if not locked_status.up_to_date:
            upgrade(connection, attributes=attributes)
    return status
