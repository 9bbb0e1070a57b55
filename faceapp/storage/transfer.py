"""Gallery export and import: one zip file to move identities between workstations.

Layout (``faceapp-gallery/1``, documented in docs/identity_store.md)::

    manifest.json              identities (with their crops' metadata), models (with thresholds and the
                               metadata of each template row), format, export time, FaceApp version
    crops/<key>.png            one aligned 112x112 face crop per enrolled image
    embeddings/<n>.npy         float32 (rows, dim) matrix of model n; row i is models[n].templates[i]

With a passphrase the zip is written sealed (``faceapp.storage.sealed_archive``: AES-256-GCM, scrypt); import
opens a sealed export entirely in memory first, so a wrong passphrase or a changed byte stops it before the
store is touched. Crops and templates are opened with this gallery's key on export and sealed with the
receiving gallery's key on import (each bound to its new row).

Import adds everything in ONE transaction (a failure leaves the store untouched). A name that already
exists fails the import, is skipped, or is merged into the existing identity (``on_conflict``); crops
already present in a merged identity (same PNG bytes) are not duplicated. Stored thresholds of this
workstation are never overwritten by imported ones. Before the transaction, the archive is checked as
hostile input by ``faceapp.storage.archive_checks`` (sizes before reading, every manifest field, every
matrix and crop): what it may contain is documented there.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from faceapp import __version__
from faceapp.core.errors import InputFileError
from faceapp.storage.archive_checks import (
    MAX_CROP_BYTES, check_crop, load_matrix, read_manifest_bytes, read_member, validate_manifest,
)
from faceapp.storage.audit import append_audit
from faceapp.storage.catalog import ensure_model
from faceapp.storage.migrate import head_revision
from faceapp.storage.records import AuditEntry, ModelSpec, NameInUseError
from faceapp.core.files import create_private_file
from faceapp.storage.sealed_archive import is_sealed, open_archive, seal_archive
from faceapp.storage.schema import Crop, EmbeddingModel, Identity, Template, ThresholdSet, utcnow
from faceapp.storage.store import Store
from faceapp.storage.uow import bump_revision

FORMAT = "faceapp-gallery/1"
Conflict = Literal["fail", "skip", "merge"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError as error:
        raise InputFileError(f"gallery file: {value!r} is not an ISO date/time") from error


def export_gallery(store: Store, path: str | Path, *, overwrite: bool = False, include_crops: bool = True,
                   model_ids: list[str] | None = None, passphrase: str | None = None) -> dict[str, Any]:
    """Write the whole gallery (or only some models' templates) to a zip, sealed with ``passphrase`` when
    given (the file is created 0600 either way); returns a summary."""
    target = Path(path).expanduser()
    if target.exists() and not overwrite:
        raise InputFileError(f"{target} already exists: choose another file or pass --overwrite", path=str(target))
    if not target.parent.is_dir():
        raise InputFileError(f"folder {target.parent} does not exist", path=str(target))
    partial = create_private_file(target.with_name(target.name + ".partial"))
    clear: Any = io.BytesIO() if passphrase else partial

    def work(session: Session) -> dict[str, Any]:
        counts = {"identities": 0, "crops": 0, "templates": 0, "skipped_templates": 0}
        identities = []
        with zipfile.ZipFile(clear, "w", compression=zipfile.ZIP_STORED) as archive:
            for identity in session.scalars(select(Identity).order_by(Identity.id)):
                crops = []
                if include_crops:
                    for crop in session.scalars(select(Crop).where(Crop.identity_id == identity.id).order_by(Crop.id)):
                        archive.writestr(f"crops/{crop.id}.png", store.vault.open_crop(crop))
                        crops.append({"key": crop.id, "file": f"crops/{crop.id}.png", "width": crop.width,
                                      "height": crop.height, "quality": crop.quality, "source": crop.source,
                                      "created_at": _iso(crop.created_at)})
                identities.append({"key": identity.id, "name": identity.name, "external_id": identity.external_id,
                                   "notes": identity.notes, "consent_at": _iso(identity.consent_at),
                                   "created_at": _iso(identity.created_at), "updated_at": _iso(identity.updated_at),
                                   "crops": crops})
                counts["identities"] += 1
                counts["crops"] += len(crops)
            models = []
            query = select(EmbeddingModel).order_by(EmbeddingModel.model_id)
            if model_ids:
                query = query.where(EmbeddingModel.model_id.in_(model_ids))
            for number, model in enumerate(session.scalars(query)):
                rows, vectors = [], []
                for template in session.scalars(select(Template).where(Template.model_id == model.model_id)
                                                .order_by(Template.id)):
                    embedding = store.vault.open_template(template)
                    if template.dim != model.embedding_dim or len(embedding) != 4 * template.dim:
                        counts["skipped_templates"] += 1
                        continue
                    vectors.append(store.vault.unprotect(template.model_id, np.frombuffer(embedding, dtype="<f4")))
                    rows.append({"identity": template.identity_id,
                                 "crop": template.crop_id if include_crops else None, "quality": template.quality,
                                 "source": template.source, "created_at": _iso(template.created_at)})
                buffer = io.BytesIO()
                np.save(buffer, np.asarray(vectors, dtype="<f4").reshape(len(vectors), model.embedding_dim))
                archive.writestr(f"embeddings/{number}.npy", buffer.getvalue())
                threshold = session.get(ThresholdSet, model.model_id)
                models.append({
                    "model_id": model.model_id, "name": model.name, "embedding_dim": model.embedding_dim,
                    "folder": model.folder, "sha256": model.sha256,
                    "metrics": json.loads(model.metrics_json) if model.metrics_json else None,
                    "embeddings": f"embeddings/{number}.npy", "templates": rows,
                    "thresholds": None if threshold is None else {
                        "verify": threshold.verify, "identify": threshold.identify, "target_far": threshold.target_far,
                        "source": threshold.source, "calibrated_at": _iso(threshold.calibrated_at)},
                })
                counts["templates"] += len(rows)
            manifest = {"format": FORMAT, "exported_at": _iso(utcnow()), "faceapp_version": __version__,
                        "schema_revision": head_revision(), "identities": identities, "models": models}
            archive.writestr("manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False))
        return counts

    try:
        counts = store.uow.read(work)
        if passphrase:
            with open(partial, "wb") as out:
                seal_archive(clear.getvalue(), passphrase, out)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return {"path": str(target), **counts}


def _read_manifest(archive: zipfile.ZipFile, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads(read_manifest_bytes(archive, where))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise InputFileError(f"{where}: manifest.json is not valid JSON ({error})", path=where) from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise InputFileError(f"{where}: format {found!r} is not {FORMAT!r} (exported by another FaceApp version?)",
                             path=where)
    return manifest


def import_gallery(store: Store, path: str | Path, *, on_conflict: Conflict = "fail",
                   operator: str | None = None, passphrase: str | None = None,
                   known_models: Iterable[ModelSpec] = ()) -> dict[str, Any]:
    """Add an exported gallery to ``store`` in one transaction; returns what was added. A sealed export
    needs its ``passphrase`` (GalleryKeyError when missing or wrong, nothing imported). ``known_models``
    (the active model) join the store's registered models in the dimension check."""
    where = str(path)
    if on_conflict not in ("fail", "skip", "merge"):
        raise ValueError(f"on_conflict must be fail, skip or merge, got {on_conflict!r}")
    try:
        archive = zipfile.ZipFile(open_archive(path, passphrase) if is_sealed(path) else path)
    except FileNotFoundError as error:
        raise InputFileError(f"{where}: no such file", path=where) from error
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as error:
        raise InputFileError(f"{where} is not a zip file (expected a FaceApp gallery export)", path=where) from error
    except OSError as error:
        raise InputFileError(f"{where}: cannot read ({error.strerror or error})", path=where) from error
    with archive:
        known = [*known_models, *(ModelSpec(m.model_id, m.name, m.embedding_dim) for m in store.models.list())]
        manifest = validate_manifest(_read_manifest(archive, where), where, known_models=known)
        matrices = [load_matrix(archive, model, where) for model in manifest["models"]]
        pngs: dict[Any, bytes] = {}
        for entry in manifest["identities"]:
            for crop in entry["crops"]:
                pngs[crop["key"]] = check_crop(read_member(archive, crop["file"], MAX_CROP_BYTES, where), crop, where)

    def work(session: Session) -> dict[str, Any]:
        summary = {"identities": 0, "merged": 0, "skipped": 0, "crops": 0, "templates": 0}
        identity_ids: dict[Any, int] = {}
        crop_ids: dict[Any, int] = {}
        sealed: list[tuple[Template, bytes]] = []
        for entry in manifest.get("identities", []):
            name = entry["name"]                          # checked: normal form, no invisible characters
            existing = session.scalar(select(Identity).where(Identity.name == name))
            if existing is not None and on_conflict == "fail":
                raise NameInUseError(f"identity {name!r} already exists here: nothing imported (use --on-conflict "
                                     "skip or merge)")
            if existing is not None and on_conflict == "skip":
                summary["skipped"] += 1
                continue
            known_pngs: set[str] = set()
            if existing is None:
                external = entry.get("external_id")
                if external and session.scalar(select(Identity.id).where(Identity.external_id == external)):
                    external = None                    # taken here by someone else: keep the person, drop the id
                identity = Identity(name=name, external_id=external, notes=entry.get("notes"),
                                    consent_at=_when(entry.get("consent_at")),
                                    created_at=_when(entry.get("created_at")) or utcnow())
                session.add(identity)
                session.flush()
                summary["identities"] += 1
            else:
                identity = existing
                known_pngs = {hashlib.sha256(store.vault.open_crop(c)).hexdigest() for c in
                              session.scalars(select(Crop).where(Crop.identity_id == identity.id))}
                summary["merged"] += 1
            identity_ids[entry["key"]] = identity.id
            for crop in entry.get("crops", []):
                data = pngs[crop["key"]]
                if hashlib.sha256(data).hexdigest() in known_pngs:
                    continue
                row = Crop(identity_id=identity.id, png=b"", width=int(crop["width"]), height=int(crop["height"]),
                           quality=crop.get("quality"), source=crop.get("source"),
                           created_at=_when(crop.get("created_at")) or utcnow())
                session.add(row)
                session.flush()
                store.vault.seal_crop(row, data)
                crop_ids[crop["key"]] = row.id
                summary["crops"] += 1
        for model, matrix in zip(manifest.get("models", []), matrices):
            spec = ModelSpec(model_id=model["model_id"], name=model["name"], embedding_dim=int(model["embedding_dim"]),
                             folder=model.get("folder"), sha256=model.get("sha256"), metrics=model.get("metrics"))
            ensure_model(session, spec)
            thresholds = model.get("thresholds")
            if thresholds and session.get(ThresholdSet, spec.model_id) is None:
                session.add(ThresholdSet(model_id=spec.model_id, verify=float(thresholds["verify"]),
                                         identify=float(thresholds["identify"]), target_far=thresholds.get("target_far"),
                                         source=f"import:{thresholds.get('source', '')}",
                                         calibrated_at=_when(thresholds.get("calibrated_at")) or utcnow()))
            for row, vector in zip(model["templates"], matrix):
                identity_id = identity_ids.get(row["identity"])
                crop_key = row.get("crop")
                if identity_id is None or (crop_key is not None and crop_key not in crop_ids):
                    continue                          # skipped identity, or a crop already present (merge)
                template = Template(identity_id=identity_id, model_id=spec.model_id,
                                    crop_id=crop_ids.get(crop_key) if crop_key is not None else None,
                                    dim=spec.embedding_dim, embedding=b"", quality=row.get("quality"),
                                    source=row.get("source"), created_at=_when(row.get("created_at")) or utcnow())
                session.add(template)
                sealed.append((template, vector.astype("<f4").tobytes()))
                summary["templates"] += 1
        session.flush()
        for template, blob in sealed:
            store.vault.seal_template(template, blob)
        session.flush()
        bump_revision(session)
        append_audit(session, AuditEntry("import", operator=operator, details={**summary, "file": Path(where).name}))
        return summary

    store.vault.prepare()
    return store.uow.write(work)
