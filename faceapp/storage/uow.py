"""Units of work: one short session and transaction per store call, retried when the database is busy.

``read(fn)`` and ``write(fn)`` run ``fn(session)`` inside a transaction (``BEGIN`` / ``BEGIN IMMEDIATE`` on
SQLite) and commit; any failure rolls back the whole unit. Driver errors become ``DatabaseError`` messages
naming the file. A write that still finds the database locked after the busy timeout is retried a few
times with back-off before giving up, so two processes enrolling at once both succeed.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Callable, TypeVar

from sqlalchemy import select, update
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from faceapp.core.errors import FaceAppError
from faceapp.storage.engine import WRITE_OPTION, checkpoint_truncate, is_locked_error, to_database_error
from faceapp.storage.schema import GalleryState, utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")


class UnitOfWork:
    """Runs functions of a Session in read or write transactions against one engine."""

    def __init__(self, engine: Engine, url: URL, *, busy_timeout_s: float, retries: int) -> None:
        self.engine = engine
        self.url = url
        self.busy_timeout_s = busy_timeout_s
        self.retries = max(0, retries)
        self.write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self._read_sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(bind=self.write_engine, expire_on_commit=False)

    def read(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a read transaction and return its result."""
        return self._run(work, self._read_sessions, retries=self.retries)

    def write(self, work: Callable[[Session], T], *, retries: int | None = None) -> T:
        """Run ``work`` in one write transaction (all or nothing) and return its result (``retries``: after
        the busy timeout, default the store's; 0 gives up after one busy timeout)."""
        return self._run(work, self._write_sessions, retries=self.retries if retries is None else retries)

    def erase(self, work: Callable[[Session], T]) -> T:
        """A write that deletes faces or templates: committed, then the WAL is checkpointed and truncated so
        that, with ``secure_delete``, no copy of the deleted bytes stays in the database file or its WAL."""
        result = self.write(work)
        checkpoint_truncate(self.engine)
        return result

    def _run(self, work: Callable[[Session], T], factory: sessionmaker[Session], *, retries: int) -> T:
        attempt = 0
        while True:
            try:
                with factory() as session, session.begin():
                    return work(session)
            except FaceAppError:
                raise
            except OperationalError as error:
                if is_locked_error(error) and attempt < retries:
                    attempt += 1
                    delay = min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random())
                    log.debug("database busy, retry %d/%d in %.2fs", attempt, retries, delay)
                    time.sleep(delay)
                    continue
                waited = self.busy_timeout_s * (attempt + 1)
                raise to_database_error(error, self.url, busy_timeout_s=waited) from error
            except (DBAPIError, SQLAlchemyError) as error:
                raise to_database_error(error, self.url, busy_timeout_s=self.busy_timeout_s) from error


def bump_revision(session: Session) -> None:
    """Mark the gallery as changed (in-memory indexes re-sync when the revision moves)."""
    session.execute(update(GalleryState).where(GalleryState.id == 1)
                    .values(revision=GalleryState.revision + 1, updated_at=utcnow()))


def read_revision(session: Session) -> int:
    """The current gallery revision."""
    return int(session.scalar(select(GalleryState.revision).where(GalleryState.id == 1)) or 0)
