"""What a gallery archive may contain: every member read with a size limit, every manifest field checked
before anything is written (``faceapp gallery import``).

An archive comes from another workstation, so it is treated as hostile input, with the rules the command
line applies to the same values:

- sizes first, from the zip directory, before a byte is inflated: manifest.json at most
  ``MAX_MANIFEST_BYTES``, a crop at most ``MAX_CROP_BYTES``, an embeddings matrix exactly the bytes its
  declared shape needs; a member inflating more than ``MAX_RATIO`` times its compressed size is a zip bomb;
  reads stop at the limit whatever the directory claims;
- names and external ids go through ``clean_text`` (NFC, no control or invisible characters, no ``#12``
  form, not empty, at most 200 characters); notes and sources are bounded and free of control characters
  other than line breaks and tabs; duplicate names (after normalisation), keys or files are refused;
- thresholds as ``faceapp thresholds set`` takes them (finite, in [-1, 1]), a target FAR in (0, 1];
- every identity brings at least one template or one crop (crops can be re-embedded with ``faceapp db
  reembed``); every template row names an identity and a crop of that identity present in the archive;
- each embeddings matrix is float, finite, of unit rows, shaped (templates, embedding_dim); a model id
  already known here (registered in the store, or the active model) with another dimension is refused;
- each crop is a PNG whose header declares the size the manifest states (at most ``MAX_CROP_SIDE``) and
  that decodes, the decode check the quality gate applies to any picture.

Each problem raises an InputFileError (IncompatibleError for dimensions) naming the archive and the field
(``manifest.json identities[3].name``), before the import's single transaction begins.
"""

from __future__ import annotations

import io
import math
import re
import struct
import zipfile
from datetime import datetime
from typing import Any, Iterable

import numpy as np

from faceapp.core.errors import FaceAppError, IncompatibleError, InputFileError
from faceapp.core.text import visible
from faceapp.storage.catalog import check_threshold
from faceapp.storage.identities import clean_text, normal_form
from faceapp.storage.records import ModelSpec
from faceapp.storage.schema import MODEL_ID_LENGTH, NAME_LENGTH

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_CROP_BYTES = 1024 * 1024
MAX_CROP_SIDE = 1024
MAX_EMBEDDING_DIM = 4096
MAX_TEXT = 10_000                      # notes, sources
MAX_RATIO = 200                        # inflated / compressed size of one member
UNIT_TOLERANCE = 1e-2                  # | ||row|| - 1 | allowed for an embedding row
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CROP_FILE = re.compile(r"crops/[A-Za-z0-9_.-]{1,100}\.png")
_EMBEDDINGS_FILE = re.compile(r"embeddings/[A-Za-z0-9_.-]{1,100}\.npy")


class _Problem:
    """Builds the errors for one archive: ``problem("identities[3].name", "is empty")``."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __call__(self, field: str, text: str, kind: type[FaceAppError] = InputFileError) -> FaceAppError:
        return kind(f"{self.where}: manifest.json {field} {text}: nothing imported", path=self.where)


# --------------------------------------------------------------------------------------------- members
def read_member(archive: zipfile.ZipFile, name: str, limit: int, where: str) -> bytes:
    """The bytes of member ``name``, refused when its declared size is over ``limit``, when it inflates more
    than ``MAX_RATIO`` times, or when it turns out longer than declared (read stops at ``limit``)."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise InputFileError(f"{where}: {name} is listed in manifest.json but missing from the archive: "
                             "nothing imported", path=where) from None
    if info.file_size > limit:
        raise InputFileError(f"{where}: {name} is {info.file_size} bytes, more than the {limit} allowed: "
                             "nothing imported", path=where)
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > 1024 * 1024 \
            and info.file_size > MAX_RATIO * max(1, info.compress_size):
        raise InputFileError(f"{where}: {name} inflates {info.compress_size} bytes to {info.file_size} (a zip "
                             "bomb?): nothing imported", path=where)
    try:
        with archive.open(info) as stream:
            data = stream.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as error:
        raise InputFileError(f"{where}: {name} cannot be read ({error}): nothing imported", path=where) from error
    if len(data) > limit:
        raise InputFileError(f"{where}: {name} is longer than its directory entry says: nothing imported", path=where)
    return data


def read_manifest_bytes(archive: zipfile.ZipFile, where: str) -> bytes:
    """manifest.json's bytes (at most ``MAX_MANIFEST_BYTES``); InputFileError when absent."""
    if "manifest.json" not in archive.namelist():
        raise InputFileError(f"{where} is not a FaceApp gallery export (no manifest.json)", path=where)
    return read_member(archive, "manifest.json", MAX_MANIFEST_BYTES, where)


# --------------------------------------------------------------------------------------------- fields
def _mapping(value: Any, field: str, problem: _Problem) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise problem(field, f"must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, field: str, problem: _Problem, *, optional: bool = True) -> list[Any]:
    if value is None and optional:
        return []
    if not isinstance(value, list):
        raise problem(field, f"must be a list, got {type(value).__name__}")
    return value


def _key(value: Any, field: str, problem: _Problem) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and len(value) > 200):
        raise problem(field, "must be an integer or a short string")
    return value


def _integer(value: Any, field: str, problem: _Problem, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise problem(field, f"must be an integer from {low} to {high}, got {visible(repr(value))[:50]}")
    return value


def _fraction(value: Any, field: str, problem: _Problem) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise problem(field, f"must be a number from 0 to 1, got {visible(repr(value))[:50]}")
    return float(value)


def _free_text(value: Any, field: str, problem: _Problem, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise problem(field, f"must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise problem(field, f"is {len(value)} characters long, more than {limit}")
    if any(not ch.isprintable() and ch not in "\n\t" for ch in value):
        raise problem(field, f"'{visible(value)[:60]}' contains control or invisible characters")
    return value


def _label(value: Any, field: str, what: str, problem: _Problem, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise problem(field, f"must be text, got {type(value).__name__}")
    try:
        return clean_text(value, what)
    except FaceAppError as error:
        raise problem(field, f"is refused: {error}") from None


def _time(value: Any, field: str, problem: _Problem) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise problem(field, "must be an ISO date/time")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise problem(field, f"{visible(value)!r} is not an ISO date/time") from None
    return value


# --------------------------------------------------------------------------------------------- manifest
def validate_manifest(manifest: Any, where: str, *, known_models: Iterable[ModelSpec] = ()) -> dict[str, Any]:
    """A checked copy of a manifest's identities and models, names in normal form (see module docstring);
    raises before anything is read from the archive's other members."""
    problem = _Problem(where)
    manifest = _mapping(manifest, "", problem)
    known = {spec.model_id: spec.embedding_dim for spec in known_models}
    identities: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    keys: set[Any] = set()
    crop_owner: dict[Any, Any] = {}
    files: set[str] = set()
    for i, raw in enumerate(_list(manifest.get("identities"), "identities", problem)):
        at = f"identities[{i}]"
        entry = _mapping(raw, at, problem)
        key = _key(entry.get("key"), f"{at}.key", problem)
        if key in keys:
            raise problem(f"{at}.key", f"{key!r} is used twice")
        keys.add(key)
        name = _label(entry.get("name"), f"{at}.name", "name", problem)
        if name in names:
            raise problem(f"{at}.name", f"'{visible(name)}' is the same name as {names[name]} (after Unicode "
                                        "normalisation)")
        names[name] = at
        crops = []
        for j, raw_crop in enumerate(_list(entry.get("crops"), f"{at}.crops", problem)):
            cat = f"{at}.crops[{j}]"
            crop = _mapping(raw_crop, cat, problem)
            crop_key = _key(crop.get("key"), f"{cat}.key", problem)
            if crop_key in crop_owner:
                raise problem(f"{cat}.key", f"{crop_key!r} is used twice")
            file = crop.get("file")
            if not isinstance(file, str) or not _CROP_FILE.fullmatch(file):
                raise problem(f"{cat}.file", "must name a crops/<key>.png member")
            if file in files:
                raise problem(f"{cat}.file", f"{file} is used twice")
            files.add(file)
            crop_owner[crop_key] = key
            crops.append({"key": crop_key, "file": file,
                          "width": _integer(crop.get("width"), f"{cat}.width", problem, 1, MAX_CROP_SIDE),
                          "height": _integer(crop.get("height"), f"{cat}.height", problem, 1, MAX_CROP_SIDE),
                          "quality": _fraction(crop.get("quality"), f"{cat}.quality", problem),
                          "source": _free_text(crop.get("source"), f"{cat}.source", problem),
                          "created_at": _time(crop.get("created_at"), f"{cat}.created_at", problem)})
        identities.append({
            "key": key, "name": name,
            "external_id": _label(entry.get("external_id") or None, f"{at}.external_id", "external id", problem,
                                  optional=True),
            "notes": _free_text(entry.get("notes"), f"{at}.notes", problem),
            "consent_at": _time(entry.get("consent_at"), f"{at}.consent_at", problem),
            "created_at": _time(entry.get("created_at"), f"{at}.created_at", problem),
            "updated_at": _time(entry.get("updated_at"), f"{at}.updated_at", problem),
            "crops": crops})
    identity_keys = keys
    with_templates: set[Any] = set()
    models: list[dict[str, Any]] = []
    for m, raw in enumerate(_list(manifest.get("models"), "models", problem)):
        at = f"models[{m}]"
        model = _mapping(raw, at, problem)
        model_id = model.get("model_id")
        if not isinstance(model_id, str) or not normal_form(model_id) or len(model_id) > MODEL_ID_LENGTH \
                or not model_id.isprintable() or model_id != model_id.strip():
            raise problem(f"{at}.model_id", "must be a printable model id")
        if any(other["model_id"] == model_id for other in models):
            raise problem(f"{at}.model_id", f"{model_id!r} is listed twice")
        dim = _integer(model.get("embedding_dim"), f"{at}.embedding_dim", problem, 1, MAX_EMBEDDING_DIM)
        if model_id in known and known[model_id] != dim:
            raise problem(f"{at}.embedding_dim", f"is {dim}, but model {model_id!r} makes {known[model_id]}-value "
                                                 "embeddings here: its templates could never be compared",
                          IncompatibleError)
        file = model.get("embeddings")
        if not isinstance(file, str) or not _EMBEDDINGS_FILE.fullmatch(file) or file in files:
            raise problem(f"{at}.embeddings", "must name a distinct embeddings/<n>.npy member")
        files.add(file)
        rows = []
        for r, raw_row in enumerate(_list(model.get("templates"), f"{at}.templates", problem)):
            rat = f"{at}.templates[{r}]"
            row = _mapping(raw_row, rat, problem)
            owner = row.get("identity")
            if isinstance(owner, bool) or not isinstance(owner, (int, str)) or owner not in identity_keys:
                raise problem(f"{rat}.identity", "names no identity of the archive")
            crop_key = row.get("crop")
            if crop_key is not None and crop_owner.get(crop_key, object()) != owner:
                raise problem(f"{rat}.crop", "names no crop of that identity in the archive")
            with_templates.add(owner)
            rows.append({"identity": owner, "crop": crop_key,
                         "quality": _fraction(row.get("quality"), f"{rat}.quality", problem),
                         "source": _free_text(row.get("source"), f"{rat}.source", problem),
                         "created_at": _time(row.get("created_at"), f"{rat}.created_at", problem)})
        thresholds = model.get("thresholds")
        if thresholds is not None:
            thresholds = _mapping(thresholds, f"{at}.thresholds", problem)
            checked: dict[str, Any] = {}
            for kind in ("verify", "identify"):
                value = thresholds.get(kind)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise problem(f"{at}.thresholds.{kind}", "must be a number")
                try:
                    checked[kind] = check_threshold(value, kind)
                except FaceAppError as error:
                    raise problem(f"{at}.thresholds.{kind}", f"is refused: {error}") from None
            far = thresholds.get("target_far")
            if far is not None and (isinstance(far, bool) or not isinstance(far, (int, float))
                                    or not math.isfinite(far) or not 0.0 < far <= 1.0):
                raise problem(f"{at}.thresholds.target_far", "must be a false-accept rate in (0, 1]")
            checked.update(target_far=far, source=_free_text(thresholds.get("source"), f"{at}.thresholds.source",
                                                             problem, NAME_LENGTH) or "",
                           calibrated_at=_time(thresholds.get("calibrated_at"), f"{at}.thresholds.calibrated_at",
                                               problem))
            thresholds = checked
        metrics = model.get("metrics")
        if metrics is not None and not isinstance(metrics, dict):
            raise problem(f"{at}.metrics", "must be an object")
        models.append({"model_id": model_id, "name": _free_text(model.get("name"), f"{at}.name", problem,
                                                                NAME_LENGTH) or model_id,
                       "embedding_dim": dim, "embeddings": file, "templates": rows, "thresholds": thresholds,
                       "folder": _free_text(model.get("folder"), f"{at}.folder", problem, 4096),
                       "sha256": _free_text(model.get("sha256"), f"{at}.sha256", problem, 128),
                       "metrics": metrics})
    for i, entry in enumerate(identities):
        if entry["key"] not in with_templates and not entry["crops"]:
            raise problem(f"identities[{i}]", f"('{visible(entry['name'])}') has no template and no crop: "
                                              "nothing to recognise it by")
    return {**manifest, "identities": identities, "models": models}


# --------------------------------------------------------------------------------------------- payloads
def load_matrix(archive: zipfile.ZipFile, model: dict[str, Any], where: str) -> np.ndarray:
    """The (templates, embedding_dim) float32 matrix of a checked model entry: float, finite, unit rows."""
    rows, dim = len(model["templates"]), int(model["embedding_dim"])
    name = model["embeddings"]
    data = read_member(archive, name, 8 * rows * dim + 4096, where)        # float64 at most, plus the header
    try:
        stream = io.BytesIO(data)
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
        if dtype.kind != "f" or dtype.itemsize > 8 or tuple(shape) != (rows, dim):
            raise IncompatibleError(f"{where}: {name} holds {dtype} {tuple(shape)}, expected float32 "
                                    f"({rows}, {dim}) for model {model['model_id']}: nothing imported")
        matrix = np.load(io.BytesIO(data), allow_pickle=False)
    except FaceAppError:
        raise
    except (ValueError, TypeError, OSError, EOFError, struct.error, SyntaxError) as error:
        raise InputFileError(f"{where}: {name} is not a .npy matrix ({error}): nothing imported", path=where) from error
    matrix = np.asarray(matrix, dtype=np.float32).reshape(rows, dim)
    if not np.all(np.isfinite(matrix)):
        raise IncompatibleError(f"{where}: {name} holds NaN or infinite values: nothing imported")
    norms = np.linalg.norm(matrix, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > UNIT_TOLERANCE)
    if bad.size:
        raise IncompatibleError(f"{where}: {name} row {int(bad[0])} has length {float(norms[bad[0]]):.4g}, not 1 "
                                "(embeddings are unit vectors): nothing imported")
    return matrix


def check_crop(data: bytes, crop: dict[str, Any], where: str) -> bytes:
    """``data`` when it is a PNG of the declared size (read from its header first) that decodes."""
    file = crop["file"]
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        raise InputFileError(f"{where}: {file} is not a PNG image: nothing imported", path=where)
    width, height = struct.unpack(">II", data[16:24])
    if (width, height) != (crop["width"], crop["height"]):
        raise InputFileError(f"{where}: {file} is {width}x{height}, manifest.json says {crop['width']}x"
                             f"{crop['height']}: nothing imported", path=where)
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != (height, width):
        raise InputFileError(f"{where}: {file} does not decode as a PNG image: nothing imported", path=where)
    return data
