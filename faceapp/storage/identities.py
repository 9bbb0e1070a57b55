"""Identities: add, find, list with counts, rename, update, delete (with their crops and templates)."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from faceapp.core.errors import NotFoundError
from faceapp.core.text import visible
from faceapp.storage.audit import append_audit
from faceapp.storage.backups import Erasure, queue_erasure, replay_pending
from faceapp.storage.records import (
    AuditEntry,
    DeleteReport,
    FieldError,
    IdentityInfo,
    IdentityRef,
    NameInUseError,
    NewIdentity,
)
from faceapp.storage.schema import NAME_LENGTH, AuditEvent, Crop, Identity, Template, utcnow
from faceapp.storage.uow import UnitOfWork, bump_revision

UNSET: Any = object()


#: Characters that render as nothing although Unicode files them as letters or symbols (Hangul fillers,
#: the braille blank); with every control/format/private/unassigned character (categories C*: escape codes,
#: zero-width spaces and joiners, bidi overrides, soft hyphens) they are refused in names, since two names
#: that look the same would be two people.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def normal_form(text: str) -> str:
    """``text`` in Unicode NFC with whitespace runs collapsed to one space: how names are stored and looked up
    (an NFD "José" typed on one keyboard finds the NFC "José" stored from another)."""
    return " ".join(unicodedata.normalize("NFC", str(text)).split())


def is_id_reference(text: str) -> bool:
    """True for ``#`` followed by digits: the form that names an identity by id (``#12``)."""
    return text.startswith("#") and text[1:].isdigit()


def clean_text(value: str, field: str) -> str:
    """``value`` in normal form (``normal_form``); FieldError when empty, longer than NAME_LENGTH, holding
    control or invisible characters, or (a name) of the id-reference form ``#12``."""
    text = normal_form(value)
    if not text:
        raise FieldError(f"identity {field} is empty")
    if len(text) > NAME_LENGTH:
        raise FieldError(f"identity {field} is {len(text)} characters long, more than {NAME_LENGTH}")
    hidden = sorted({ch for ch in text if unicodedata.category(ch).startswith("C") or ch in _INVISIBLE})
    if hidden:
        codes = ", ".join(f"U+{ord(ch):04X}" for ch in hidden[:5])
        raise FieldError(f"identity {field} '{visible(text)}' contains control or invisible characters ({codes}): "
                         "type it without them")
    if field == "name" and is_id_reference(text):
        raise FieldError(f"identity name {text!r} has the form of an id reference ({text} names identity id "
                         f"{int(text[1:])}): choose a name that is not '#' followed by digits")
    return text


def parse_ref(ref: IdentityRef) -> int | str:
    """An int id for ``12`` or ``'#12'``, else the name in normal form (``normal_form``)."""
    if isinstance(ref, int):
        return ref
    text = normal_form(ref)
    if is_id_reference(text):
        return int(text[1:])
    return text


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own ``%``, ``_`` and ``\\`` taken literally (escape ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def load_identity(session: Session, ref: IdentityRef) -> Identity:
    """The ORM identity for an id or exact name; NotFoundError otherwise."""
    key = parse_ref(ref)
    if isinstance(key, int):
        identity = session.get(Identity, key)
    else:
        identity = session.scalar(select(Identity).where(Identity.name == key))
    if identity is None:
        what = f"id {key}" if isinstance(key, int) else repr(key)
        raise NotFoundError(f"no identity {what} in the gallery (see `faceapp identities list`)")
    return identity


def check_free(session: Session, name: str | None, external_id: str | None, *, except_id: int | None = None) -> None:
    """NameInUseError when another identity already has ``name`` or ``external_id``."""
    clauses = []
    if name is not None:
        clauses.append(Identity.name == name)
    if external_id is not None:
        clauses.append(Identity.external_id == external_id)
    if not clauses:
        return
    query = select(Identity).where(or_(*clauses))
    if except_id is not None:
        query = query.where(Identity.id != except_id)
    other = session.scalar(query.limit(1))
    if other is None:
        return
    if name is not None and other.name == name:
        raise NameInUseError(f"identity name {name!r} is already used (id {other.id})")
    raise NameInUseError(f"external id {external_id!r} is already used by identity id {other.id}")


def create_identity(session: Session, new: NewIdentity) -> Identity:
    """Insert a new identity after checking that its name and external id are free."""
    name = clean_text(new.name, "name")
    external_id = clean_text(new.external_id, "external id") if new.external_id else None
    check_free(session, name, external_id)
    identity = Identity(name=name, external_id=external_id, notes=new.notes, consent_at=new.consent_at)
    session.add(identity)
    session.flush()
    return identity


def identity_info(session: Session, identity: Identity) -> IdentityInfo:
    """The record of one identity with its counts."""
    return _infos(session, [identity])[0]


def _infos(session: Session, identities: list[Identity]) -> list[IdentityInfo]:
    ids = [i.id for i in identities]
    if not ids:
        return []
    crops = dict(session.execute(
        select(Crop.identity_id, func.count()).where(Crop.identity_id.in_(ids)).group_by(Crop.identity_id)).all())
    per_model: dict[int, dict[str, int]] = {}
    rows = session.execute(select(Template.identity_id, Template.model_id, func.count())
                           .where(Template.identity_id.in_(ids)).group_by(Template.identity_id, Template.model_id))
    for identity_id, model_id, count in rows:
        per_model.setdefault(identity_id, {})[model_id] = count
    return [
        IdentityInfo(
            id=i.id, name=i.name, external_id=i.external_id, notes=i.notes, consent_at=i.consent_at,
            created_at=i.created_at, updated_at=i.updated_at, crop_count=int(crops.get(i.id, 0)),
            template_counts=per_model.get(i.id, {}),
        )
        for i in identities
    ]


class IdentityRepository:
    """Identity operations, each one unit of work."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def add(self, name: str, *, external_id: str | None = None, notes: str | None = None,
            consent_at: datetime | None = None) -> IdentityInfo:
        """Create an identity without templates; NameInUseError when the name or external id is taken."""

        def work(session: Session) -> IdentityInfo:
            identity = create_identity(session, NewIdentity(name, external_id, notes, consent_at))
            bump_revision(session)
            return identity_info(session, identity)

        return self._uow.write(work)

    def get(self, ref: IdentityRef) -> IdentityInfo:
        """The identity with this id (int or '#12') or exact name; NotFoundError otherwise."""
        return self._uow.read(lambda session: identity_info(session, load_identity(session, ref)))

    def find(self, ref: IdentityRef) -> IdentityInfo | None:
        """Like ``get`` but None when absent."""
        try:
            return self.get(ref)
        except NotFoundError:
            return None

    def list(self, search: str | None = None, *, limit: int | None = None, offset: int = 0) -> list[IdentityInfo]:
        """Identities ordered by name, optionally filtered by a case-insensitive substring of name/external id."""

        def work(session: Session) -> list[IdentityInfo]:
            query = select(Identity).order_by(func.lower(Identity.name), Identity.id)
            if search and normal_form(search):
                pattern = like_pattern(normal_form(search).lower())
                query = query.where(or_(func.lower(Identity.name).like(pattern, escape="\\"),
                                        func.lower(func.coalesce(Identity.external_id, "")).like(pattern, escape="\\")))
            if offset:
                query = query.offset(offset)
            if limit is not None:
                query = query.limit(limit)
            return _infos(session, list(session.scalars(query)))

        return self._uow.read(work)

    def count(self) -> int:
        """How many identities the gallery holds."""
        return self._uow.read(lambda session: int(session.scalar(select(func.count()).select_from(Identity)) or 0))

    def rename(self, ref: IdentityRef, new_name: str, *, operator: str | None = None) -> IdentityInfo:
        """Give an identity another (free) name."""
        return self.update(ref, name=new_name, operator=operator)

    def update(self, ref: IdentityRef, *, name: str = UNSET, external_id: str | None = UNSET,
               notes: str | None = UNSET, consent_at: datetime | None = UNSET,
               operator: str | None = None) -> IdentityInfo:
        """Change the given fields of an identity (omitted fields keep their value); audited."""

        def work(session: Session) -> IdentityInfo:
            identity = load_identity(session, ref)
            old_name = identity.name
            new_name = clean_text(name, "name") if name is not UNSET else None
            new_external = (clean_text(external_id, "external id") if external_id else None) \
                if external_id is not UNSET else UNSET
            check_free(session, new_name, new_external if new_external not in (UNSET, None) else None,
                       except_id=identity.id)
            if new_name is not None:
                identity.name = new_name
            if new_external is not UNSET:
                identity.external_id = new_external
            if notes is not UNSET:
                identity.notes = notes
            if consent_at is not UNSET:
                identity.consent_at = consent_at
            identity.updated_at = utcnow()
            session.flush()
            bump_revision(session)
            operation = "rename" if new_name is not None and new_name != old_name else "update"
            append_audit(session, AuditEntry(operation, identity_id=identity.id, identity_name=identity.name,
                                             operator=operator, details={"previous_name": old_name}
                                             if operation == "rename" else None))
            return identity_info(session, identity)

        return self._uow.write(work)

    def delete(self, ref: IdentityRef, *, forget_audit: bool = False, operator: str | None = None) -> DeleteReport:
        """Delete an identity with all its templates and crops in one transaction.

        Audit events keep their rows (decisions stay explainable) but lose the link to the deleted
        identity; with ``forget_audit`` the name recorded in them is blanked as well.
        """

        def work(session: Session) -> DeleteReport:
            identity = load_identity(session, ref)
            identity_id, name = identity.id, identity.name
            templates = session.execute(delete(Template).where(Template.identity_id == identity_id)).rowcount
            crops = session.execute(delete(Crop).where(Crop.identity_id == identity_id)).rowcount
            values: dict[str, Any] = {"identity_id": None}
            if forget_audit:
                values.update(identity_name=None, details_json=None)
            session.execute(update(AuditEvent).where(AuditEvent.identity_id == identity_id).values(**values))
            session.execute(delete(Identity).where(Identity.id == identity_id))
            queue_erasure(session, Erasure(identity_id=identity_id, forget_audit=forget_audit))
            bump_revision(session)
            append_audit(session, AuditEntry("delete", identity_name=None if forget_audit else name, operator=operator,
                                             details={"identity_id": identity_id, "templates": int(templates),
                                                      "crops": int(crops)}))
            return DeleteReport(identity_id=identity_id, name=name, templates=int(templates), crops=int(crops))

        report = self._uow.erase(work)
        backups = replay_pending(self._uow)
        return replace(report, backups_erased=tuple(backups.erased), backups_missing=tuple(backups.missing),
                       backups_failed=tuple(backups.failed))
