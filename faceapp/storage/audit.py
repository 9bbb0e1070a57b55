"""The audit log: every verify/identify decision and every gallery change, appended and queried.

Audit rows outlive the identities they mention (the link is cleared on delete, the name kept unless
the deletion asked to forget it), so a past decision stays explainable.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceapp.storage.records import OPERATIONS, AuditEntry, AuditRecord  # noqa: F401 (re-exported)
from faceapp.storage.schema import AuditEvent
from faceapp.storage.uow import UnitOfWork


def append_audit(session: Session, entry: AuditEntry) -> AuditEvent:
    """Add one audit row to the current transaction."""
    event = AuditEvent(
        operation=entry.operation, identity_id=entry.identity_id, identity_name=entry.identity_name,
        model_id=entry.model_id, score=None if entry.score is None else float(entry.score),
        threshold=None if entry.threshold is None else float(entry.threshold), decision=entry.decision,
        operator=entry.operator, details_json=json.dumps(entry.details, sort_keys=True) if entry.details else None,
    )
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

    def append(self, entry: AuditEntry) -> AuditRecord:
        """Write one audit event in its own transaction."""
        return self._uow.write(lambda session: to_record(append_audit(session, entry)))

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
