"""Engines for the identity store: URL resolution, SQLite pragmas, explicit BEGIN, clear errors.

SQLite (the default) is opened with ``secure_delete=ON`` (deleted rows - faces, templates - are overwritten
with zeros in the file and its WAL instead of lingering in free pages; many SQLite builds default to off),
``journal_mode=WAL`` (readers never block the writer),
``foreign_keys=ON``, ``synchronous=NORMAL`` (safe against a killed process; WAL keeps the file
consistent) and a busy timeout. The sqlite3 driver's own transaction handling is switched off and
SQLAlchemy emits ``BEGIN`` itself: ``BEGIN IMMEDIATE`` for write units of work, so two writers queue
on the busy timeout instead of failing on a read-to-write lock upgrade, and plain ``BEGIN`` for reads.
Any other SQLAlchemy URL (e.g. ``postgresql+psycopg://host/faceapp``) is used as given.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from faceapp.core.errors import DatabaseError
from faceapp.core.paths import default_database_url

log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_S = 10.0
WRITE_OPTION = "faceapp_write"


def resolve_url(url: str | Path | None) -> str:
    """``url`` as an SQLAlchemy URL string: None -> $FACEAPP_DB / default file; a bare path -> sqlite file;
    ``postgresql://`` -> ``postgresql+psycopg://`` (psycopg 3, the ``postgresql`` extra)."""
    text = default_database_url() if url is None or str(url).strip() == "" else str(url).strip()
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    if text.startswith("postgresql://"):      # SQLAlchemy's default driver is psycopg2; FaceApp's extra ships psycopg 3
        return "postgresql+psycopg://" + text[len("postgresql://"):]
    return text


def parse_url(url: str) -> URL:
    """Parse an SQLAlchemy URL, raising DatabaseError (not ArgumentError) when it is malformed."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as error:
        raise DatabaseError(f"database URL {url!r} is not valid: {error}") from error


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL (also ``sqlite:///file:PATH?uri=true`` forms); None for memory/other backends."""
    if not is_sqlite(url):
        return None
    database = url.database or ""
    if database.startswith("file:"):
        database = database[len("file:"):].split("?", 1)[0]
    if database in ("", ":memory:") or "mode=memory" in str(url):
        return None
    return Path(database)


def display_url(url: URL) -> str:
    """The URL for messages: the file path for SQLite, the URL without password otherwise."""
    path = sqlite_file(url)
    if path is not None:
        return str(path)
    return url.render_as_string(hide_password=True)


def create_store_engine(url: URL, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S, echo: bool = False) -> Engine:
    """An Engine for ``url`` with FaceApp's connection setup (see module docstring)."""
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if is_sqlite(url):
        kwargs["connect_args"] = {"timeout": busy_timeout_s}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, SQLAlchemyError, ImportError) as error:
        raise DatabaseError(f"cannot use database {display_url(url)}: {error}") from error
    if is_sqlite(url):
        _install_sqlite_hooks(engine, busy_timeout_s)
    return engine


def _install_sqlite_hooks(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see module docstring)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.OperationalError as error:  # read-only file or mode=ro: keep its journal mode
                log.debug("journal_mode=WAL not set: %s", error)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def checkpoint_truncate(engine: Engine) -> None:
    """Copy the WAL into the database file and truncate the WAL to zero bytes (after an erasure, so that no
    frame of the deleted rows stays in the -wal file). No-op for other backends; a checkpoint that readers
    keep from finishing is left to the next one (SQLite then resets the WAL when it can)."""
    if not is_sqlite(engine.url):
        return
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()   # type: ignore[union-attr]
    except sqlite3.Error as error:
        log.debug("wal_checkpoint(TRUNCATE) not done: %s", error)
    finally:
        raw.close()


_SQLITE_MESSAGES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("database is locked", "database table is locked", "database schema is locked"),
     "database {where} is locked by another program (waited {timeout:g} s): close other FaceApp windows or "
     "processes using it and try again"),
    (("readonly database", "read-only", "readonly"),
     "database {where} is read-only (file or folder permissions, a read-only mount, or a mode=ro URL): "
     "use a writable location, e.g. `faceapp db backup NEW.db` and --db NEW.db"),
    (("unable to open database file",),
     "cannot open database file {where}: the folder does not exist or is not accessible; create the folder "
     "or pass another --db / FACEAPP_DB"),
    (("file is not a database", "file is encrypted", "malformed"),
     "database file {where} is damaged or not a SQLite database: restore a backup or pass another --db"),
    (("disk is full", "database or disk is full"),
     "database {where}: the disk is full; free space and try again"),
    (("disk i/o error",),
     "database {where}: disk I/O error; check the disk and the file"),
)


def is_locked_error(error: BaseException) -> bool:
    """True when ``error`` is SQLite's 'database is locked' (worth a retry)."""
    text = str(getattr(error, "orig", error)).lower()
    return "locked" in text or "busy" in text


def to_database_error(error: BaseException, url: URL, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> DatabaseError:
    """A DatabaseError naming the file (or URL) and saying what to do, for a driver/SQLAlchemy error."""
    if isinstance(error, DatabaseError):
        return error
    where = display_url(url)
    original = getattr(error, "orig", None) or error
    text = str(original).lower()
    if is_sqlite(url):
        for needles, template in _SQLITE_MESSAGES:
            if any(needle in text for needle in needles):
                return DatabaseError(template.format(where=where, timeout=busy_timeout_s), path=where)
    summary = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return DatabaseError(f"lost the connection to database {where}: {summary}", path=where)
    return DatabaseError(f"database {where}: {summary}", path=where)
