"""The audit log: every verify/identify decision and every gallery change, appended and queried.

Audit rows outlive the identities they mention (the link is cleared on delete, the name kept unless
the deletion asked to forget it), so a past decision stays explainable.

A decision is never lost to a lock: when another program holds the SQLite write lock past the busy
timeout, ``append(..., queue_when_locked=True)`` writes the row durably (fsync) as one JSON line to
``<database>.audit-queue`` (mode 0600) beside the database file, and returns; the next audit write that
gets the lock moves every queued row into the table, in the same transaction, keeping its original time.
Queued rows carry a ``queued_id`` in their details, so a crash between commit and truncation never
duplicates them. Where no queue is possible (a server database, a read-only folder) the DatabaseError is
raised with "the decision was NOT recorded".
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceapp.core.errors import DatabaseError
from faceapp.storage.engine import is_locked_error, sqlite_file
from faceapp.storage.records import OPERATIONS, AuditEntry, AuditRecord  # noqa: F401 (re-exported)
from faceapp.storage.schema import AuditEvent
from faceapp.storage.uow import UnitOfWork

try:                                   # POSIX: serialise queue appends and flushes between processes
    import fcntl
except ImportError:                    # pragma: no cover - Windows: appends of one short line are atomic enough
    fcntl = None  # type: ignore[assignment]

QUEUE_SUFFIX = ".audit-queue"


def append_audit(session: Session, entry: AuditEntry, *, time: datetime | None = None) -> AuditEvent:
    """Add one audit row to the current transaction (``time``: when it happened, default now)."""
    event = AuditEvent(
        operation=entry.operation, identity_id=entry.identity_id, identity_name=entry.identity_name,
        model_id=entry.model_id, score=None if entry.score is None else float(entry.score),
        threshold=None if entry.threshold is None else float(entry.threshold), decision=entry.decision,
        operator=entry.operator, details_json=json.dumps(entry.details, sort_keys=True) if entry.details else None,
    )
    if time is not None:
        event.time = time
    session.add(event)
    session.flush()
    return event


def to_record(event: AuditEvent) -> AuditRecord:
    return AuditRecord(
        id=event.id, time=event.time, operation=event.operation, identity_id=event.identity_id,
        identity_name=event.identity_name, model_id=event.model_id, score=event.score, threshold=event.threshold,
        decision=event.decision, operator=event.operator,
        details=json.loads(event.details_json) if event.details_json else {},
    )


class AuditRepository:
    """Append and query audit events."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    @property
    def queue_path(self) -> Path | None:
        """The durable queue beside a SQLite database file (None for other databases)."""
        database = sqlite_file(self._uow.url)
        return None if database is None else database.with_name(database.name + QUEUE_SUFFIX)

    def append(self, entry: AuditEntry, *, queue_when_locked: bool = False) -> AuditRecord | None:
        """Write one audit event in its own transaction, with any rows queued earlier.

        With ``queue_when_locked`` a database locked by another program does not lose the event: it is
        queued durably (see module docstring) and None is returned; a DatabaseError saying the decision was
        not recorded is raised when it cannot be queued either.
        """

        def work(session: Session) -> AuditRecord:
            self._flush_queue(session)
            return to_record(append_audit(session, entry))

        try:
            return self._uow.write(work, retries=0 if queue_when_locked else None)
        except DatabaseError as error:
            if not queue_when_locked or not is_locked_error(error.__cause__ or error):
                raise
            self._enqueue(entry, error)
            return None

    def pending(self) -> int:
        """How many audit events wait in the queue file."""
        path = self.queue_path
        if path is None or not path.is_file():
            return 0
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())

    def flush_queue(self) -> int:
        """Move queued events into the table now (one transaction, one busy timeout at most); returns how
        many were written (0 at once when nothing is queued)."""
        return self._uow.write(self._flush_queue, retries=0) if self.pending() else 0

    def _enqueue(self, entry: AuditEntry, error: DatabaseError) -> None:
        path = self.queue_path
        if path is None:
            raise DatabaseError(f"{error} - the decision was NOT recorded in the audit log", path=error.path) from error
        details = {**(entry.details or {}), "queued_id": uuid.uuid4().hex}
        line = json.dumps({"time": datetime.now(timezone.utc).isoformat(),
                           "entry": dataclasses.asdict(dataclasses.replace(entry, details=details))},
                          sort_keys=True) + "\n"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as os_error:
            raise DatabaseError(f"{error}; the audit row could not be queued in {path} either "
                                f"({os_error.strerror or os_error}) - the decision was NOT recorded",
                                path=str(path)) from os_error

    def _flush_queue(self, session: Session) -> int:
        """Inside a write transaction: insert the queued rows not yet in the table, then empty the queue."""
        path = self.queue_path
        if path is None or not path.is_file():
            return 0
        with open(path, "r+", encoding="utf-8") as stream:
            if fcntl is not None:
                fcntl.flock(stream.fileno(), fcntl.LOCK_EX)
            written = 0
            for line in stream.read().splitlines():
                try:
                    item = json.loads(line)
                    entry = AuditEntry(**item["entry"])
                    when = datetime.fromisoformat(item["time"])
                except (ValueError, TypeError, KeyError):
                    continue                 # a line cut by a crash while it was written: nothing to recover
                queued_id = (entry.details or {}).get("queued_id", "")
                if session.scalar(select(AuditEvent.id).where(AuditEvent.details_json.contains(queued_id)).limit(1)):
                    continue                 # written by a flush that crashed before truncating the queue
                append_audit(session, entry, time=when)
                written += 1
            session.flush()
            stream.seek(0)
            stream.truncate()
        return written

    def query(self, *, since: datetime | None = None, operation: str | None = None,
              identity_id: int | None = None, event_id: int | None = None, limit: int | None = None,
              newest_first: bool = False) -> list[AuditRecord]:
        """Audit events at or after ``since`` (aware or naive-UTC), optionally of one operation or identity,
        or the one event ``event_id``."""

        def work(session: Session) -> list[AuditRecord]:
            order = AuditEvent.id.desc() if newest_first else AuditEvent.id
            query = select(AuditEvent).order_by(order)
            if since is not None:
                query = query.where(AuditEvent.time >= (since if since.tzinfo else since.replace(tzinfo=timezone.utc)))
            if operation is not None:
                query = query.where(AuditEvent.operation == operation)
            if identity_id is not None:
                query = query.where(AuditEvent.identity_id == identity_id)
            if event_id is not None:
                query = query.where(AuditEvent.id == event_id)
            if limit is not None:
                query = query.limit(limit)
            return [to_record(event) for event in session.scalars(query)]

        return self._uow.read(work)
