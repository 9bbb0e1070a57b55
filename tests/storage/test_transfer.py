"""Gallery export/import: a zip round trip keeps identities, crops, templates and thresholds; conflicts
fail, skip or merge; a broken file is refused without touching the store."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from faceapp.core.errors import InputFileError
from faceapp.storage import ModelSpec, NameInUseError, NewIdentity, Store
from faceapp.storage.maintenance import check
from faceapp.storage.transfer import FORMAT, export_gallery, import_gallery


@pytest.fixture
def source(store: Store, make_samples, model) -> Store:
    consent = datetime(2024, 3, 4, 5, 6, tzinfo=timezone.utc)
    store.templates.enroll(NewIdentity("Alice", external_id="A-1", notes="desk", consent_at=consent),
                           make_samples(3), model)
    store.templates.enroll(NewIdentity("Bob"), make_samples(2, seed=1), model)
    store.templates.enroll("Bob", make_samples(1, seed=2, dim=4, crops=False), ModelSpec("small@1", "small", 4))
    store.thresholds.set(model, verify=0.4, identify=0.45, target_far=1e-3, source="calibration")
    return store


def test_round_trip_into_an_empty_store(source: Store, model, tmp_path: Path) -> None:
    summary = export_gallery(source, tmp_path / "gallery.zip")
    assert summary == {"path": str(tmp_path / "gallery.zip"), "identities": 2, "crops": 5, "templates": 6,
                       "skipped_templates": 0}
    with zipfile.ZipFile(tmp_path / "gallery.zip") as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["format"] == FORMAT and len([n for n in archive.namelist() if n.endswith(".png")]) == 5
    with Store(tmp_path / "target.db") as target:
        added = import_gallery(target, tmp_path / "gallery.zip", operator="op")
        assert (added["identities"], added["crops"], added["templates"]) == (2, 5, 6)
        alice = target.identities.get("Alice")
        assert (alice.external_id, alice.notes, alice.consent_at.year) == ("A-1", "desk", 2024)
        assert alice.template_counts == {model.model_id: 3} and alice.crop_count == 3
        assert target.identities.get("Bob").template_counts == {model.model_id: 2, "small@1": 1}
        original = source.templates.for_identity("Alice")
        copied = target.templates.for_identity("Alice")
        assert all(np.array_equal(a.embedding, b.embedding) for a, b in zip(original, copied))
        assert target.templates.crops("Alice")[0].png == source.templates.crops("Alice")[0].png
        assert target.thresholds.get(model.model_id).source == "import:calibration"
        assert target.audit.query(operation="import")[0].details["templates"] == 6
        assert check(target).ok


def test_conflicts_fail_skip_or_merge(source: Store, make_samples, model, tmp_path: Path) -> None:
    export_gallery(source, tmp_path / "gallery.zip")
    with Store(tmp_path / "target.db") as target:
        target.templates.enroll(NewIdentity("Alice"), make_samples(1, seed=9), model)
        before = target.revision()
        with pytest.raises(NameInUseError, match="nothing imported"):
            import_gallery(target, tmp_path / "gallery.zip")
        assert target.revision() == before and target.identities.count() == 1     # rolled back entirely
        skipped = import_gallery(target, tmp_path / "gallery.zip", on_conflict="skip")
        assert (skipped["identities"], skipped["skipped"]) == (1, 1)
        assert target.identities.get("Alice").template_count == 1
        merged = import_gallery(target, tmp_path / "gallery.zip", on_conflict="merge")
        assert merged["merged"] == 2 and target.identities.get("Alice").template_count == 4
        again = import_gallery(target, tmp_path / "gallery.zip", on_conflict="merge")   # same crops: no duplicates
        assert again["crops"] == 0 and target.identities.get("Alice").crop_count == 4


def test_bad_files_are_refused_clearly(store: Store, tmp_path: Path) -> None:
    not_zip = tmp_path / "x.zip"
    not_zip.write_text("hello")
    with pytest.raises(InputFileError, match="not a zip"):
        import_gallery(store, not_zip)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("manifest.json", json.dumps({"format": "something-else"}))
    with pytest.raises(InputFileError, match="something-else"):
        import_gallery(store, tmp_path / "other.zip")
    with pytest.raises(InputFileError, match="no such file"):
        import_gallery(store, tmp_path / "missing.zip")
    export_gallery(store, tmp_path / "empty.zip")
    with pytest.raises(InputFileError, match="already exists"):
        export_gallery(store, tmp_path / "empty.zip")
