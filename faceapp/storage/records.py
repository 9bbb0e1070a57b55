"""Plain records the store returns and accepts, detached from any session (safe across threads).

The ORM classes in ``schema`` stay inside units of work; callers (CLI, GUI, services) see these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from faceapp.core.errors import ExitCode, FaceAppError
from faceapp.storage.codec import decode_png


class FieldError(FaceAppError):
    """A value given for a field is unusable (empty or too long name, threshold out of range...)."""

    exit_code = ExitCode.USAGE


class NameInUseError(FieldError):
    """An identity name or external id is already taken (choose another, or add to that identity)."""


OPERATIONS = ("enroll", "verify", "identify", "rename", "update", "delete", "delete-template", "reembed",
              "thresholds", "import", "liveness", "liveness-threshold")
"""The operations audit events record."""

IdentityRef = int | str
"""An identity by database id (int, or a string of digits prefixed with '#', e.g. '#12') or by exact name."""


@dataclass(frozen=True)
class IdentityInfo:
    """An identity with its template and crop counts."""

    id: int
    name: str
    external_id: str | None
    notes: str | None
    consent_at: datetime | None
    created_at: datetime
    updated_at: datetime
    crop_count: int = 0
    template_counts: dict[str, int] = field(default_factory=dict)   # model_id -> templates

    @property
    def template_count(self) -> int:
        return sum(self.template_counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "external_id": self.external_id, "notes": self.notes,
            "consent_at": self.consent_at, "created_at": self.created_at, "updated_at": self.updated_at,
            "crops": self.crop_count, "templates": self.template_count, "templates_by_model": self.template_counts,
        }


@dataclass(frozen=True)
class CropRecord:
    """A stored aligned face crop (PNG bytes)."""

    id: int
    identity_id: int
    png: bytes
    width: int
    height: int
    quality: float | None
    source: str | None
    created_at: datetime

    def image(self) -> np.ndarray:
        """The crop as a BGR uint8 array."""
        return decode_png(self.png)


@dataclass(frozen=True)
class TemplateRecord:
    """A stored embedding with its provenance."""

    id: int
    identity_id: int
    model_id: str
    dim: int
    embedding: np.ndarray
    quality: float | None
    source: str | None
    created_at: datetime
    crop_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "identity_id": self.identity_id, "model_id": self.model_id, "dim": self.dim,
            "quality": self.quality, "source": self.source, "created_at": self.created_at, "crop_id": self.crop_id,
        }


@dataclass(frozen=True)
class ModelRecord:
    """A registered embedding model."""

    model_id: str
    name: str
    embedding_dim: int
    folder: str | None
    sha256: str | None
    metrics: dict[str, Any]
    registered_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id, "name": self.name, "embedding_dim": self.embedding_dim,
            "folder": self.folder, "sha256": self.sha256, "metrics": self.metrics, "registered_at": self.registered_at,
        }


@dataclass(frozen=True)
class ModelSpec:
    """What to register about a model (taken from an Embedder: ``model_id``, ``name``, ``dim``...)."""

    model_id: str
    name: str
    embedding_dim: int
    folder: str | None = None
    sha256: str | None = None
    metrics: dict[str, Any] | None = None


@dataclass(frozen=True)
class ThresholdRecord:
    """Stored decision thresholds of one model."""

    model_id: str
    verify: float
    identify: float
    target_far: float | None
    source: str
    calibrated_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    """An audit event to append."""

    operation: str
    identity_id: int | None = None
    identity_name: str | None = None
    model_id: str | None = None
    score: float | None = None
    threshold: float | None = None
    decision: str | None = None
    operator: str | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class AuditRecord:
    """A stored audit event."""

    id: int
    time: datetime
    operation: str
    identity_id: int | None
    identity_name: str | None
    model_id: str | None
    score: float | None
    threshold: float | None
    decision: str | None
    operator: str | None
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "time": self.time, "operation": self.operation, "identity_id": self.identity_id,
            "identity_name": self.identity_name, "model_id": self.model_id, "score": self.score,
            "threshold": self.threshold, "decision": self.decision, "operator": self.operator, "details": self.details,
        }


@dataclass(frozen=True)
class NewSample:
    """One enrolled face: its aligned crop (BGR uint8, optional) and/or its embedding (optional).

    A sample with a crop but no embedding stores only the crop (re-embedding fills the template in);
    one with an embedding but no crop stores a crop-less template (it cannot be re-embedded later).
    """

    crop: np.ndarray | None = None
    embedding: np.ndarray | None = None
    quality: float | None = None
    source: str | None = None


@dataclass(frozen=True)
class NewIdentity:
    """Details of an identity to create."""

    name: str
    external_id: str | None = None
    notes: str | None = None
    consent_at: datetime | None = None


@dataclass(frozen=True)
class EnrollmentRecord:
    """What one enrolment transaction wrote."""

    identity: IdentityInfo
    created: bool
    crop_ids: tuple[int, ...]
    template_ids: tuple[int, ...]


@dataclass(frozen=True)
class DeleteReport:
    """What deleting an identity removed."""

    identity_id: int
    name: str
    templates: int
    crops: int
    backups_erased: tuple[str, ...] = ()        # app-made backups the deletion was replayed in
    backups_missing: tuple[str, ...] = ()       # recorded backups no longer where they were written
    backups_failed: tuple[str, ...] = ()        # "path: reason" (replaced by another file, read-only...)


@dataclass(frozen=True)
class GalleryRows:
    """All templates of one model as arrays, ready for an in-memory index."""

    model_id: str
    dim: int
    template_ids: np.ndarray     # (N,) int64
    identity_ids: np.ndarray     # (N,) int64
    embeddings: np.ndarray       # (N, dim) float32
    names: dict[int, str]        # identity id -> name, for the identities present
    skipped: int = 0             # rows of this model whose dimension or byte length did not match
    revision: int = 0            # gallery revision the rows were read at
