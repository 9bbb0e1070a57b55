"""Crops and templates: enrolment in one transaction, gallery rows for the index, re-embedding batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from faceapp.core.errors import IncompatibleError, NotFoundError
from faceapp.storage.audit import append_audit
from faceapp.storage.backups import Erasure, queue_erasure, replay_pending
from faceapp.storage.catalog import ensure_model
from faceapp.storage.crypto import Vault
from faceapp.storage.codec import decode_embedding, decode_embeddings, encode_embedding, encode_png
from faceapp.storage.identities import create_identity, identity_info, load_identity
from faceapp.storage.records import (
    AuditEntry,
    CropRecord,
    EnrollmentRecord,
    FieldError,
    GalleryRows,
    IdentityRef,
    ModelSpec,
    NewIdentity,
    NewSample,
    TemplateRecord,
)
from faceapp.storage.schema import Crop, Identity, Template
from faceapp.storage.uow import UnitOfWork, bump_revision, read_revision

_IN_CHUNK = 500   # ids per IN (...) clause (SQLite's variable limit is far above, PostgreSQL has none)


@dataclass(frozen=True)
class _Encoded:
    png: bytes | None
    width: int
    height: int
    embedding: bytes | None
    quality: float | None
    source: str | None


def _encode_samples(samples: Sequence[NewSample], model: ModelSpec | None) -> list[_Encoded]:
    """Validate and encode outside the transaction (PNG compression must not hold the write lock)."""
    encoded = []
    for number, sample in enumerate(samples, 1):
        if sample.crop is None and sample.embedding is None:
            raise FieldError(f"sample {number} has neither a crop nor an embedding")
        embedding = None
        if sample.embedding is not None:
            if model is None:
                raise FieldError(f"sample {number} has an embedding but no model was given")
            vector = np.asarray(sample.embedding, dtype=np.float32).reshape(-1)
            if vector.size != model.embedding_dim:
                raise IncompatibleError(f"sample {number}: embedding has {vector.size} values, model "
                                        f"{model.model_id!r} produces {model.embedding_dim}")
            embedding = encode_embedding(vector)
        png, height, width = None, 0, 0
        if sample.crop is not None:
            png = encode_png(sample.crop)
            height, width = int(sample.crop.shape[0]), int(sample.crop.shape[1])
        encoded.append(_Encoded(png, width, height, embedding, sample.quality, sample.source))
    return encoded


def crop_record(crop: Crop, vault: Vault) -> CropRecord:
    """A crop row as a record, its PNG opened with the gallery key."""
    return CropRecord(id=crop.id, identity_id=crop.identity_id, png=vault.open_crop(crop), width=crop.width,
                      height=crop.height, quality=crop.quality, source=crop.source, created_at=crop.created_at)


def _template_record(template: Template, vault: Vault) -> TemplateRecord:
    """A template row as a record holding the model's own vector (an unlinkable gallery's transform undone, so
    it compares with fresh embeddings); only the in-memory index (``gallery_rows``) keeps the stored space."""
    try:
        vector = vault.unprotect(template.model_id, decode_embedding(vault.open_template(template), template.dim))
    except IncompatibleError:
        vector = np.empty(0, dtype=np.float32)   # damaged row: shown, never compared
    return TemplateRecord(id=template.id, identity_id=template.identity_id, model_id=template.model_id,
                          dim=template.dim, embedding=vector, quality=template.quality, source=template.source,
                          created_at=template.created_at, crop_id=template.crop_id)


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    values = [int(i) for i in ids]
    return [values[i:i + _IN_CHUNK] for i in range(0, len(values), _IN_CHUNK)]


def _open_rows(rows: Sequence[Any], model_id: str, vault: Vault) -> list[tuple[int, int, bytes]]:
    """(id, identity id, clear embedding bytes) of (id, identity id, stored bytes, key version) rows: the one
    place where templates are decrypted for the in-memory index (in the gallery's stored space: transformed in
    an unlinkable gallery, so probes go through ``Vault.protect``)."""
    return [(int(r[0]), int(r[1]), vault.open("template", r[0], r[1], model_id, r[2], r[3])) for r in rows]


_GALLERY_COLUMNS = (Template.id, Template.identity_id, Template.embedding, Template.key_version)


def _rows_to_gallery(model_id: str, dim: int, rows: list[tuple[int, int, bytes]], names: dict[int, str],
                     revision: int, skipped: int) -> GalleryRows:
    good = [row for row in rows if len(row[2]) == 4 * dim]
    return GalleryRows(
        model_id=model_id, dim=dim,
        template_ids=np.fromiter((r[0] for r in good), dtype=np.int64, count=len(good)),
        identity_ids=np.fromiter((r[1] for r in good), dtype=np.int64, count=len(good)),
        embeddings=decode_embeddings([r[2] for r in good], dim), names=names,
        skipped=skipped + len(rows) - len(good), revision=revision,
    )


class TemplateRepository:
    """Crop and template operations, each one unit of work."""

    def __init__(self, uow: UnitOfWork, vault: Vault) -> None:
        self._uow = uow
        self._vault = vault

    def enroll(self, identity: NewIdentity | IdentityRef, samples: Sequence[NewSample], model: ModelSpec | None,
               *, operator: str | None = None, details: dict | None = None) -> EnrollmentRecord:
        """Create the identity (for a NewIdentity) or add to an existing one, with all samples, atomically.

        Either the identity with every crop and template is committed, or nothing is.
        """
        if not samples:
            raise FieldError("nothing to enrol: no accepted face samples")
        encoded = _encode_samples(samples, model)

        def work(session: Session) -> EnrollmentRecord:
            created = isinstance(identity, NewIdentity)
            row = create_identity(session, identity) if isinstance(identity, NewIdentity) \
                else load_identity(session, identity)
            if model is not None:
                ensure_model(session, model)
            crops = [Crop(identity_id=row.id, png=b"", width=e.width, height=e.height, quality=e.quality,
                          source=e.source) if e.png is not None else None for e in encoded]
            session.add_all([c for c in crops if c is not None])
            session.flush()                              # ids first: each sealed value is bound to its row id
            for crop, e in zip(crops, encoded):
                if crop is not None:
                    self._vault.seal_crop(crop, e.png)
            pairs = [(Template(identity_id=row.id, model_id=model.model_id, crop_id=crop.id if crop else None,
                               dim=model.embedding_dim, embedding=b"", quality=e.quality, source=e.source), e.embedding)
                     for e, crop in zip(encoded, crops) if e.embedding is not None and model is not None]
            templates = [t for t, _ in pairs]
            session.add_all(templates)
            session.flush()
            for template, blob in pairs:
                self._vault.seal_template(template, blob)
            session.flush()
            bump_revision(session)
            append_audit(session, AuditEntry(
                "enroll", identity_id=row.id, identity_name=row.name, model_id=model.model_id if model else None,
                operator=operator, decision="created" if created else "added",
                details={"crops": sum(c is not None for c in crops), "templates": len(templates), **(details or {})}))
            return EnrollmentRecord(identity=identity_info(session, row), created=created,
                                    crop_ids=tuple(c.id for c in crops if c is not None),
                                    template_ids=tuple(t.id for t in templates))

        self._vault.prepare()
        return self._uow.write(work)

    def for_identity(self, ref: IdentityRef, model_id: str | None = None) -> list[TemplateRecord]:
        """Templates of an identity (all models, or one), oldest first."""

        def work(session: Session) -> list[TemplateRecord]:
            identity = load_identity(session, ref)
            query = select(Template).where(Template.identity_id == identity.id).order_by(Template.id)
            if model_id is not None:
                query = query.where(Template.model_id == model_id)
            return [_template_record(t, self._vault) for t in session.scalars(query)]

        return self._uow.read(work)

    def crops(self, ref: IdentityRef) -> list[CropRecord]:
        """The aligned crops of an identity (PNG bytes), oldest first."""

        def work(session: Session) -> list[CropRecord]:
            identity = load_identity(session, ref)
            return [crop_record(c, self._vault) for c in session.scalars(
                select(Crop).where(Crop.identity_id == identity.id).order_by(Crop.id))]

        return self._uow.read(work)

    def delete_sample(self, template_id: int, *, operator: str | None = None) -> int:
        """Delete one enrolled sample: the template's crop and every model's template of it (or the
        crop-less template alone). Returns how many templates went."""

        def work(session: Session) -> int:
            template = session.get(Template, template_id)
            if template is None:
                raise NotFoundError(f"no template with id {template_id}")
            identity = session.get(Identity, template.identity_id)
            queue_erasure(session, Erasure(template_id=template_id, crop_id=template.crop_id))
            if template.crop_id is not None:
                count = session.execute(delete(Template).where(Template.crop_id == template.crop_id)).rowcount
                session.execute(delete(Crop).where(Crop.id == template.crop_id))
            else:
                count = session.execute(delete(Template).where(Template.id == template_id)).rowcount
            bump_revision(session)
            append_audit(session, AuditEntry("delete-template", identity_id=identity.id if identity else None,
                                             identity_name=identity.name if identity else None, operator=operator,
                                             details={"template_id": template_id, "templates": int(count)}))
            return int(count)

        count = self._uow.erase(work)
        replay_pending(self._uow)                        # a missing or failed copy is logged (path only)
        return count

    # --- gallery index support -------------------------------------------------------------------

    def gallery_rows(self, model_id: str, dim: int) -> GalleryRows:
        """Every template of ``model_id`` whose dimension is ``dim`` (others are counted in ``skipped``)."""

        def work(session: Session) -> GalleryRows:
            revision = read_revision(session)
            rows = _open_rows(session.execute(select(*_GALLERY_COLUMNS).where(
                Template.model_id == model_id, Template.dim == dim).order_by(Template.id)).all(), model_id, self._vault)
            skipped = int(session.scalar(select(func.count()).select_from(Template)
                                         .where(Template.model_id == model_id, Template.dim != dim)) or 0)
            names = dict(session.execute(select(Identity.id, Identity.name)).all())
            return _rows_to_gallery(model_id, dim, rows, names, revision, skipped)

        return self._uow.read(work)

    def gallery_changes(self, model_id: str, dim: int, known_ids: np.ndarray) -> tuple[GalleryRows, np.ndarray]:
        """Rows added since an index loaded ``known_ids``, and the known ids that are gone, in one snapshot.

        Reads only ids for the comparison, then the new rows, so a sync after a small change is cheap.
        """

        def work(session: Session) -> tuple[GalleryRows, np.ndarray]:
            revision = read_revision(session)
            current = np.fromiter(session.scalars(
                select(Template.id).where(Template.model_id == model_id, Template.dim == dim)), dtype=np.int64)
            added_ids = np.setdiff1d(current, known_ids, assume_unique=True)
            removed = np.setdiff1d(known_ids, current, assume_unique=True)
            rows: list[tuple[int, int, bytes]] = []
            for chunk in _chunks(added_ids.tolist()):
                rows.extend(_open_rows(session.execute(select(*_GALLERY_COLUMNS).where(Template.id.in_(chunk))).all(),
                                       model_id, self._vault))
            rows.sort(key=lambda r: r[0])
            names = dict(session.execute(select(Identity.id, Identity.name)).all())
            return _rows_to_gallery(model_id, dim, rows, names, revision, 0), removed

        return self._uow.read(work)

    def revision(self) -> int:
        """The gallery revision (grows with every identity/template change)."""
        return self._uow.read(read_revision)

    def counts_by_model(self) -> dict[str, dict[str, int]]:
        """model_id -> {"templates", "identities", "dims"} for the templates stored."""

        def work(session: Session) -> dict[str, dict[str, int]]:
            rows = session.execute(select(Template.model_id, func.count(), func.count(func.distinct(Template.identity_id)),
                                          func.count(func.distinct(Template.dim))).group_by(Template.model_id))
            return {m: {"templates": int(t), "identities": int(i), "dims": int(d)} for m, t, i, d in rows}

        return self._uow.read(work)

    # --- re-embedding support --------------------------------------------------------------------

    def crops_to_embed(self, model_id: str, *, after_id: int = 0, limit: int = 64) -> list[CropRecord]:
        """Crops (id > ``after_id``, by id) that have no template of ``model_id`` yet."""

        def work(session: Session) -> list[CropRecord]:
            done = select(Template.crop_id).where(Template.model_id == model_id, Template.crop_id.is_not(None))
            query = (select(Crop).where(Crop.id > after_id, Crop.id.not_in(done)).order_by(Crop.id).limit(limit))
            return [crop_record(c, self._vault) for c in session.scalars(query)]

        return self._uow.read(work)

    def count_crops_to_embed(self, model_id: str) -> int:
        """How many crops still lack a template of ``model_id``."""

        def work(session: Session) -> int:
            done = select(Template.crop_id).where(Template.model_id == model_id, Template.crop_id.is_not(None))
            return int(session.scalar(select(func.count()).select_from(Crop).where(Crop.id.not_in(done))) or 0)

        return self._uow.read(work)

    def add_crop_templates(self, model: ModelSpec, crop_ids: Sequence[int], embeddings: np.ndarray) -> int:
        """Store one template of ``model`` per crop in one transaction; crops deleted meanwhile or already
        embedded by this model are skipped (so a resumed or concurrent job never duplicates). Returns
        how many were added."""
        matrix = np.asarray(embeddings, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape != (len(crop_ids), model.embedding_dim):
            raise IncompatibleError(f"expected {len(crop_ids)} embeddings of dimension {model.embedding_dim}, "
                                    f"got shape {matrix.shape}")
        blobs = [encode_embedding(vector) for vector in matrix]

        def work(session: Session) -> int:
            ensure_model(session, model)
            wanted = [int(i) for i in crop_ids]
            crops = {c.id: c for c in session.scalars(select(Crop).where(Crop.id.in_(wanted)))}
            done = set(session.scalars(select(Template.crop_id).where(Template.model_id == model.model_id,
                                                                     Template.crop_id.in_(wanted))))
            added = 0
            new: list[tuple[Template, bytes]] = []
            for crop_id, blob in zip(wanted, blobs):
                crop = crops.get(crop_id)
                if crop is None or crop_id in done:
                    continue
                template = Template(identity_id=crop.identity_id, model_id=model.model_id, crop_id=crop_id,
                                    dim=model.embedding_dim, embedding=b"", quality=crop.quality, source=crop.source)
                session.add(template)
                new.append((template, blob))
                done.add(crop_id)
                added += 1
            if added:
                session.flush()
                for template, blob in new:
                    self._vault.seal_template(template, blob)
                session.flush()
                bump_revision(session)
            return added

        self._vault.prepare()
        return self._uow.write(work)

    def identities_without_crops(self) -> list[tuple[int, str]]:
        """(id, name) of identities that have no stored crop: they cannot be re-embedded for a new model."""

        def work(session: Session) -> list[tuple[int, str]]:
            with_crops = select(Crop.identity_id)
            return [(int(i), n) for i, n in session.execute(
                select(Identity.id, Identity.name).where(Identity.id.not_in(with_crops)).order_by(Identity.id))]

        return self._uow.read(work)

    def identities_without_templates(self, model_id: str, dim: int | None = None) -> list[tuple[int, str]]:
        """(id, name) of identities with no template of ``model_id`` (of size ``dim`` when given): that model
        cannot find them until they are re-embedded (from their crops) or enrolled again."""

        def work(session: Session) -> list[tuple[int, str]]:
            having = select(Template.identity_id).where(Template.model_id == model_id)
            if dim is not None:
                having = having.where(Template.dim == int(dim))
            return [(int(i), n) for i, n in session.execute(
                select(Identity.id, Identity.name).where(Identity.id.not_in(having)).order_by(Identity.id))]

        return self._uow.read(work)
