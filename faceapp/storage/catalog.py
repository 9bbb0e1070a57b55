"""Embedding models the gallery holds templates of, and their decision thresholds."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceapp.core.errors import IncompatibleError
from faceapp.storage.audit import append_audit
from faceapp.storage.records import AuditEntry, FieldError, ModelRecord, ModelSpec, ThresholdRecord
from faceapp.storage.schema import EmbeddingModel, ThresholdSet, utcnow
from faceapp.storage.uow import UnitOfWork


def _model_record(row: EmbeddingModel) -> ModelRecord:
    return ModelRecord(model_id=row.model_id, name=row.name, embedding_dim=row.embedding_dim, folder=row.folder,
                       sha256=row.sha256, metrics=json.loads(row.metrics_json) if row.metrics_json else {},
                       registered_at=row.registered_at)


def ensure_model(session: Session, spec: ModelSpec) -> EmbeddingModel:
    """The model row for ``spec``, inserted or refreshed; IncompatibleError when its dimension changed."""
    if spec.embedding_dim <= 0:
        raise IncompatibleError(f"model {spec.model_id!r}: embedding dimension must be positive, got {spec.embedding_dim}")
    row = session.get(EmbeddingModel, spec.model_id)
    if row is None:
        row = EmbeddingModel(model_id=spec.model_id, name=spec.name, embedding_dim=spec.embedding_dim)
        session.add(row)
    elif row.embedding_dim != spec.embedding_dim:
        raise IncompatibleError(
            f"model {spec.model_id!r} is registered with embedding dimension {row.embedding_dim}, "
            f"but this model produces {spec.embedding_dim}: the stored templates cannot be compared with it")
    if spec.folder is not None:
        row.folder = spec.folder
    if spec.sha256 is not None:
        row.sha256 = spec.sha256
    if spec.metrics is not None:
        row.metrics_json = json.dumps(spec.metrics, sort_keys=True, default=str)
    session.flush()
    return row


def _describes(record: ModelRecord, spec: ModelSpec) -> bool:
    """True when registering ``spec`` would change nothing in ``record``."""
    metrics = None if spec.metrics is None else json.loads(json.dumps(spec.metrics, sort_keys=True, default=str))
    return (record.embedding_dim == spec.embedding_dim and spec.folder in (None, record.folder)
            and spec.sha256 in (None, record.sha256) and (metrics is None or metrics == record.metrics))


def check_threshold(value: float, field: str) -> float:
    """``value`` as a float when it is a usable threshold (finite, a cosine similarity in [-1, 1]); the one
    check for every stored threshold (``faceapp thresholds set``, calibration, gallery import)."""
    number = float(value)
    if not math.isfinite(number) or not -1.0 <= number <= 1.0:
        raise FieldError(f"{field} threshold must be a cosine similarity in [-1, 1], got {value}")
    return number


def _threshold_record(row: ThresholdSet) -> ThresholdRecord:
    return ThresholdRecord(model_id=row.model_id, verify=row.verify, identify=row.identify,
                           target_far=row.target_far, source=row.source, calibrated_at=row.calibrated_at)


class ModelRepository:
    """Register and look up embedding models."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def register(self, spec: ModelSpec) -> ModelRecord:
        """Insert or refresh a model (IncompatibleError when the same id comes with another dimension).

        A model already registered as ``spec`` describes it is only read: opening a gallery needs no write
        lock, so identification answers while another program holds the database (see ``AuditRepository``).
        """
        current = self.get(spec.model_id)
        if current is not None and _describes(current, spec):
            return current
        return self._uow.write(lambda session: _model_record(ensure_model(session, spec)))

    def get(self, model_id: str) -> ModelRecord | None:
        """The registered model, or None."""

        def work(session: Session) -> ModelRecord | None:
            row = session.get(EmbeddingModel, model_id)
            return None if row is None else _model_record(row)

        return self._uow.read(work)

    def list(self) -> list[ModelRecord]:
        """All registered models, oldest first."""
        return self._uow.read(lambda session: [
            _model_record(row) for row in session.scalars(select(EmbeddingModel).order_by(EmbeddingModel.registered_at))])


class ThresholdRepository:
    """Per-model verify/identify thresholds with their calibration source and date."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def get(self, model_id: str) -> ThresholdRecord | None:
        """Stored thresholds of a model, or None (callers then fall back, see faceapp.matching.thresholds)."""

        def work(session: Session) -> ThresholdRecord | None:
            row = session.get(ThresholdSet, model_id)
            return None if row is None else _threshold_record(row)

        return self._uow.read(work)

    def set(self, model: ModelSpec, *, verify: float, identify: float, target_far: float | None = None,
            source: str = "manual", calibrated_at: datetime | None = None, operator: str | None = None) -> ThresholdRecord:
        """Store (replace) a model's thresholds; registers the model when needed; audited."""
        verify = check_threshold(verify, "verify")
        identify = check_threshold(identify, "identify")
        if target_far is not None and not 0.0 < float(target_far) < 1.0:
            raise FieldError(f"target FAR must be in (0, 1), got {target_far}")

        def work(session: Session) -> ThresholdRecord:
            ensure_model(session, model)
            row = session.get(ThresholdSet, model.model_id)
            values: dict[str, Any] = dict(verify=verify, identify=identify, target_far=target_far,
                                          source=source, calibrated_at=calibrated_at or utcnow())
            if row is None:
                row = ThresholdSet(model_id=model.model_id, **values)
                session.add(row)
            else:
                for key, value in values.items():
                    setattr(row, key, value)
            session.flush()
            append_audit(session, AuditEntry("thresholds", model_id=model.model_id, threshold=verify, operator=operator,
                                             details={"verify": verify, "identify": identify,
                                                      "target_far": target_far, "source": source}))
            return _threshold_record(row)

        return self._uow.write(work)
