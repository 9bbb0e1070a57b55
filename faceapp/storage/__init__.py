"""Identity store: SQLAlchemy ORM, Alembic migrations, identities/crops/templates/models/thresholds/audit.

Knows nothing of torch: embeddings are float32 bytes plus their dimension and model id. Entry point:
``Store(url)``; see ``faceapp.storage.store`` and docs/identity_store.md. ``Store`` is imported on first
use, so that importing the light record types (e.g. by the CLI parser) does not load SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faceapp.storage.records import (
    AuditEntry,
    AuditRecord,
    CropRecord,
    DeleteReport,
    EnrollmentRecord,
    FieldError,
    GalleryRows,
    IdentityInfo,
    ModelRecord,
    ModelSpec,
    NameInUseError,
    NewIdentity,
    NewSample,
    TemplateRecord,
    ThresholdRecord,
)

if TYPE_CHECKING:
    from faceapp.storage.store import Store

__all__ = [
    "AuditEntry", "AuditRecord", "CropRecord", "DeleteReport", "EnrollmentRecord", "FieldError", "GalleryRows",
    "IdentityInfo", "ModelRecord", "ModelSpec", "NameInUseError", "NewIdentity", "NewSample", "Store",
    "TemplateRecord", "ThresholdRecord",
]


def __getattr__(name: str) -> Any:
    if name == "Store":
        from faceapp.storage.store import Store

        return Store
    raise AttributeError(f"module 'faceapp.storage' has no attribute {name!r}")
