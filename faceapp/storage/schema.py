"""The identity store's tables as a typed SQLAlchemy 2.0 ORM (the schema at the newest migration).

Embeddings are float32 bytes plus their dimension and the id of the model that made them; nothing here
knows torch. An aligned 112x112 face crop (PNG) is kept once per enrolled image in ``crops`` so that the
gallery can be re-embedded when the active model changes; ``templates`` hold one embedding per crop and
model (or a crop-less embedding, e.g. imported). Deleting an identity deletes its crops and templates
(``ON DELETE CASCADE`` plus explicit deletes in the repository, so no orphans even without the pragma).

The migrations in ``faceapp/storage/migrations/versions`` create exactly this schema; a test compares
them with this module.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LENGTH = 200
MODEL_ID_LENGTH = 200


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator[datetime]):
    """Stores timezone-aware datetimes as naive UTC and returns them aware (UTC) on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base with a naming convention so that migrations can name every constraint."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Identity(Base):
    """A person in the gallery."""

    __tablename__ = "identities"
    __table_args__ = {"sqlite_autoincrement": True}     # ids are never reused (audit rows, index sync)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(NAME_LENGTH), unique=True)
    notes: Mapped[str | None] = mapped_column(Text)
    consent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    crops: Mapped[list[Crop]] = relationship(back_populates="identity", passive_deletes=True)
    templates: Mapped[list[Template]] = relationship(back_populates="identity", passive_deletes=True)


class Crop(Base):
    """One enrolled face image, aligned to 112x112 and stored as PNG (the input of re-embedding)."""

    __tablename__ = "crops"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"), index=True)
    png: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    quality: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    key_version: Mapped[int | None] = mapped_column(Integer)     # None: ``png`` in clear; else sealed (0003)

    identity: Mapped[Identity] = relationship(back_populates="crops")


class EmbeddingModel(Base):
    """An embedding network whose vectors are stored: ``model_id`` is ``<name>@<sha256[:12]>``."""

    __tablename__ = "models"

    model_id: Mapped[str] = mapped_column(String(MODEL_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    folder: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    embedding_dim: Mapped[int] = mapped_column(Integer)
    metrics_json: Mapped[str | None] = mapped_column(Text)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (CheckConstraint("embedding_dim > 0", name="positive_dim"),)


class Template(Base):
    """One embedding of one face by one model (float32 bytes, ``dim`` values)."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(ForeignKey("models.model_id", ondelete="CASCADE"))
    crop_id: Mapped[int | None] = mapped_column(ForeignKey("crops.id", ondelete="CASCADE"))
    dim: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    key_version: Mapped[int | None] = mapped_column(Integer)     # None: ``embedding`` in clear; else sealed (0003)

    identity: Mapped[Identity] = relationship(back_populates="templates")

    __table_args__ = (
        UniqueConstraint("crop_id", "model_id", name="uq_templates_crop_model"),
        Index("ix_templates_model_identity", "model_id", "identity_id"),
        Index("ix_templates_identity_id", "identity_id"),
        {"sqlite_autoincrement": True},   # a deleted template's id never comes back (index delta sync)
    )


class ThresholdSet(Base):
    """Decision thresholds of one model, with where they came from."""

    __tablename__ = "thresholds"

    model_id: Mapped[str] = mapped_column(ForeignKey("models.model_id", ondelete="CASCADE"), primary_key=True)
    verify: Mapped[float] = mapped_column(Float)
    identify: Mapped[float] = mapped_column(Float)
    target_far: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(Text)
    calibrated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AuditEvent(Base):
    """One recorded operation or decision (verify, identify, enroll, delete...), kept after deletions."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    operation: Mapped[str] = mapped_column(String(32))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identities.id", ondelete="SET NULL"))
    identity_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    model_id: Mapped[str | None] = mapped_column(String(MODEL_ID_LENGTH))
    score: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    decision: Mapped[str | None] = mapped_column(String(32))
    operator: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    details_json: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_audit_events_time", "time"),
        Index("ix_audit_events_operation_time", "operation", "time"),
    )


class GalleryState(Base):
    """A single row whose ``revision`` grows with every gallery change (added in migration 0002).

    In-memory gallery indexes (in this or another process) compare it before answering and re-sync
    when it moved, which keeps the GUI's index in step with a CLI enrolment.
    """

    __tablename__ = "gallery_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class GalleryKey(Base):
    """The gallery's data key, wrapped by a key-encryption key kept outside the database (added in 0003).

    One row or none: none means a gallery kept in clear (``FACEAPP_GALLERY_ENCRYPTION=off`` when it was made).
    ``key_version`` is the version of the data key that sealed the rows (``crops/templates.key_version``);
    ``source``/``kek_id``/``kdf_json`` say where the key-encryption key is (``faceapp.storage.keys``).
    """

    __tablename__ = "gallery_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gallery_id: Mapped[str] = mapped_column(String(36))
    key_version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    kek_id: Mapped[str] = mapped_column(String(64))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    kdf_json: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    rotated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # 0004: templates stored through the gallery's secret orthogonal transform (faceapp.storage.unlinkable)
    unlinkable: Mapped[bool] = mapped_column(Boolean, server_default=false())

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class AppCopy(Base):
    """A copy of gallery data this FaceApp wrote outside the database (added in 0004): a backup file
    (``faceapp db backup``) or a folder of exported crops (``identities show --crops-dir``). Deleting a person
    later removes them from every listed copy that still exists (``faceapp.storage.backups``)."""

    __tablename__ = "app_copies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))          # "backup" | "crops"
    path: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class PendingErasure(Base):
    """A deletion not yet replayed in every copy listed in ``app_copies`` (added in 0004): the ids it removed,
    as JSON (``faceapp.storage.backups.Erasure``), written in the deleting transaction."""

    __tablename__ = "pending_erasures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
