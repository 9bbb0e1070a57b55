"""Crafted gallery archives (issue 15): each refused with a message naming the archive and the field,
before anything is written; the store is left exactly as it was."""

from __future__ import annotations

import copy
import io
import json
import struct
import unicodedata
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from faceapp.core.errors import FaceAppError, IncompatibleError, InputFileError
from faceapp.storage import ModelSpec, NewIdentity, Store
from faceapp.storage import archive_checks
from faceapp.storage.transfer import export_gallery, import_gallery


@pytest.fixture
def exported(store: Store, make_samples, model, tmp_path: Path) -> Path:
    store.templates.enroll(NewIdentity("Alice", external_id="A-1"), make_samples(2), model)
    store.templates.enroll(NewIdentity("Bob"), make_samples(2, seed=1), model)
    store.thresholds.set(model, verify=0.4, identify=0.45, source="calibration")
    return Path(export_gallery(store, tmp_path / "good.zip")["path"])


@pytest.fixture
def target(tmp_path: Path, model) -> Store:
    with Store(tmp_path / "target.db") as opened:
        opened.models.register(model)                       # this workstation knows the model (16 values)
        yield opened


def _craft(source: Path, path: Path, change: Callable[[dict[str, Any]], Any] | None = None,
           members: dict[str, bytes] | None = None, compression: int = zipfile.ZIP_STORED) -> Path:
    """A copy of ``source`` with its manifest changed by ``change`` and some members replaced or added."""
    with zipfile.ZipFile(source) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(contents["manifest.json"])
    if change is not None:
        change(manifest)
        contents["manifest.json"] = json.dumps(manifest).encode()
    contents.update(members or {})
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return path


def _npy(matrix: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, matrix)
    return buffer.getvalue()


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A manifest change setting the field at a dotted path (``identities.0.name``)."""

    def change(manifest: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = manifest
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value

    return change


def _png_header(width: int, height: int) -> bytes:
    payload = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + payload
            + struct.pack(">I", zlib.crc32(b"IHDR" + payload)) + b"\x00" * 64)


CASES: dict[str, tuple[Any, str]] = {
    # manifest shape
    "format missing": (lambda m: m.pop("format"), "format None"),
    "identities is text": (_set("identities", "everyone"), "identities must be a list"),
    "identity is a number": (_set("identities.0", 7), "identities[0] must be an object"),
    "crop list is an object": (_set("identities.0.crops", {"a": 1}), "identities[0].crops must be a list"),
    "name missing": (lambda m: m["identities"][0].pop("name"), "identities[0].name must be text"),
    "name is a number": (_set("identities.0.name", 12), "identities[0].name must be text"),
    "key is a list": (_set("identities.0.key", [1]), "identities[0].key must be"),
    # names
    "empty name": (_set("identities.0.name", "   "), "is empty"),
    "100,000-character name": (_set("identities.0.name", "x" * 100_000), "100000 characters"),
    "escape-code name": (_set("identities.0.name", "\x1b[2J\x1b[31mEve"), "invisible"),
    "zero-width name": (_set("identities.1.name", "Alice\u200b"), "invisible"),
    "id-reference name": (_set("identities.1.name", "#1"), "id reference"),
    "NFC and NFD twins": (lambda m: (m["identities"][0].update(name=unicodedata.normalize("NFC", "José")),
                                     m["identities"][1].update(name=unicodedata.normalize("NFD", "José"))),
                          "same name"),
    "notes with escapes": (_set("identities.0.notes", "hi\x1b]0;x\x07"), "identities[0].notes"),
    "bad consent date": (_set("identities.0.consent_at", "yesterday"), "ISO date"),
    # thresholds
    "verify threshold -5": (_set("models.0.thresholds.verify", -5), "[-1, 1]"),
    "identify threshold text": (_set("models.0.thresholds.identify", "0.3"), "must be a number"),
    "verify threshold NaN": (_set("models.0.thresholds.verify", float("nan")), "[-1, 1]"),
    "target FAR 3": (_set("models.0.thresholds.target_far", 3), "target_far"),
    # templates and models
    "identity without templates or crops": (
        lambda m: (m["identities"].append({"key": 999, "name": "Ghost", "crops": []})), "no template and no crop"),
    "template of an unknown identity": (_set("models.0.templates.0.identity", 999), "names no identity"),
    "template of another identity's crop": (
        lambda m: m["models"][0]["templates"][0].update(crop=m["identities"][1]["crops"][0]["key"]), "names no crop"),
    "64-d model under a known 16-d id": (_set("models.0.embedding_dim", 64), "64"),
    "dimension true": (_set("models.0.embedding_dim", True), "embedding_dim must be an integer"),
    "dimension -1": (_set("models.0.embedding_dim", -1), "embedding_dim must be an integer"),
    "quality 7": (_set("models.0.templates.0.quality", 7), "from 0 to 1"),
    "model listed twice": (lambda m: m["models"].append(copy.deepcopy(m["models"][0])), None),
    # members
    "crop outside crops/": (_set("identities.0.crops.0.file", "../../etc/passwd.png"), "crops/<key>.png"),
    "one crop file used for two crops": (
        lambda m: m["identities"][0]["crops"][1].update(file=m["identities"][0]["crops"][0]["file"]), "used twice"),
    "crop width text": (_set("identities.0.crops.0.width", "112"), "width must be an integer"),
    "crop declared 30000 wide": (_set("identities.0.crops.0.width", 30000), "width must be an integer"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_manifests_are_refused_before_anything_is_written(exported: Path, target: Store, tmp_path: Path,
                                                                  case: str) -> None:
    change, fragment = CASES[case]
    crafted = _craft(exported, tmp_path / "crafted.zip", change)
    before = target.revision()
    with pytest.raises(FaceAppError) as caught:
        import_gallery(target, crafted)
    message = str(caught.value)
    assert str(crafted) in message and "\x1b" not in message, message
    if fragment:
        assert fragment in message, message
    assert target.identities.count() == 0 and target.audit.query() == [] and target.revision() == before


def test_the_dimension_check_is_an_incompatibility(exported: Path, target: Store, tmp_path: Path) -> None:
    with pytest.raises(IncompatibleError, match="16-value"):
        import_gallery(target, _craft(exported, tmp_path / "x.zip", _set("models.0.embedding_dim", 64)))
    with pytest.raises(IncompatibleError, match="expected float32"):     # the matrix does not match the manifest
        import_gallery(target, _craft(exported, tmp_path / "y.zip",
                                      members={"embeddings/0.npy": _npy(np.ones((4, 64), np.float32) / 8)}))


@pytest.mark.parametrize("matrix, fragment", [
    (np.full((4, 16), np.nan, np.float32), "NaN"),
    (np.full((4, 16), 5.0, np.float32), "not 1"),
    (np.ones((4, 16), np.int32), "expected float32"),
])
def test_embedding_matrices_must_be_finite_unit_floats(exported: Path, target: Store, tmp_path: Path,
                                                        matrix: np.ndarray, fragment: str) -> None:
    crafted = _craft(exported, tmp_path / "m.zip", members={"embeddings/0.npy": _npy(matrix)})
    with pytest.raises(FaceAppError, match=fragment):
        import_gallery(target, crafted)
    assert target.identities.count() == 0


def test_crops_must_be_pngs_of_the_declared_size_that_decode(exported: Path, target: Store, tmp_path: Path) -> None:
    with zipfile.ZipFile(exported) as archive:
        first = json.loads(archive.read("manifest.json"))["identities"][0]["crops"][0]["file"]
    for data, fragment in ((b"GIF89a....", "not a PNG"), (_png_header(200, 200), "200x200"),
                           (_png_header(112, 112), "does not decode")):
        with pytest.raises(InputFileError, match=fragment):
            import_gallery(target, _craft(exported, tmp_path / "c.zip", members={first: data}))
    assert target.identities.count() == 0


def test_size_limits_are_applied_before_inflating(exported: Path, target: Store, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_checks, "MAX_MANIFEST_BYTES", 1 << 20)
    padded = _craft(exported, tmp_path / "big.zip", lambda m: m.update(padding=" " * (2 << 20)),
                    compression=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(padded) as archive:                 # a few KB that would inflate to 2 MB
        assert archive.getinfo("manifest.json").compress_size < 64 * 1024
    with pytest.raises(InputFileError, match="more than the 1048576 allowed"):
        import_gallery(target, padded)
    with zipfile.ZipFile(exported) as archive:
        first = json.loads(archive.read("manifest.json"))["identities"][0]["crops"][0]["file"]
    bomb = _craft(exported, tmp_path / "bomb.zip", members={first: b"\x00" * (3 << 20)},
                  compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(InputFileError, match="more than the"):
        import_gallery(target, bomb)
    assert target.identities.count() == 0


def test_a_clean_export_still_imports(exported: Path, target: Store) -> None:
    added = import_gallery(target, exported, operator="op")
    assert (added["identities"], added["crops"], added["templates"]) == (2, 4, 4)
    assert target.thresholds.get(target.models.list()[0].model_id).verify == pytest.approx(0.4)


def test_known_models_include_the_active_one(exported: Path, tmp_path: Path, model) -> None:
    with Store(tmp_path / "fresh.db") as fresh:             # nothing registered yet: the caller's model counts
        with pytest.raises(IncompatibleError):
            import_gallery(fresh, exported, known_models=[ModelSpec(model.model_id, "active", 64)])
        assert fresh.identities.count() == 0
