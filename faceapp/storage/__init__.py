"""Identity store: SQLAlchemy ORM, Alembic migrations, identities/crops/templates/models/thresholds/audit.

Knows nothing of torch: embeddings are float32 bytes plus their dimension and model id. Entry point:
``Store(url)``; see ``faceapp.storage.store`` and docs/identity_store.md.
"""

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
from faceapp.storage.store import Store

__all__ = [
    "AuditEntry", "AuditRecord", "CropRecord", "DeleteReport", "EnrollmentRecord", "FieldError", "GalleryRows",
    "IdentityInfo", "ModelRecord", "ModelSpec", "NameInUseError", "NewIdentity", "NewSample", "Store",
    "TemplateRecord", "ThresholdRecord",
]
