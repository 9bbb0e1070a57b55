"""The alignment cache on real AT&T photos with the real MediaPipe pipeline: crops, manifest, failures,
cancel + resume, reuse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceapp.core.errors import CancelledError
from faceapp.core.progress import CancelToken, run_to_completion
from faceapp.data.cache import AlignSettings, align_images, open_cached
from faceapp.data.datasets import DatasetSpec, scan_dataset


@pytest.fixture()
def small_dataset(att: Path, tmp_path: Path) -> Path:
    root = tmp_path / "faces"
    for person in ("s1", "s2"):
        shutil.copytree(att / person, root / person)
    (root / "zz_bad").mkdir()
    (root / "zz_bad" / "text.jpg").write_text("not an image")
    cv2.imwrite(str(root / "zz_bad" / "blank.png"), np.full((120, 100, 3), 128, np.uint8))
    return root


def test_cancel_resume_and_reuse(small_dataset: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    items = scan_dataset(DatasetSpec(path=str(small_dataset))).items
    assert len(items) == 22
    cache_root = tmp_path / "cache"
    cancel = CancelToken()
    job = align_images(items, name="faces", cache_root=cache_root, cancel=cancel, chunk=8)
    events = []
    with pytest.raises(CancelledError, match="run again to resume"):
        for event in job:
            events.append(event)
            if event.done >= 8:
                cancel.cancel()
    assert open_cached(items, "faces", cache_root=cache_root) is None          # not complete
    folder = next(cache_root.iterdir())
    assert len((folder / "manifest.jsonl").read_text().splitlines()) == 8

    resumed = []
    aligned = run_to_completion(align_images(items, name="faces", cache_root=cache_root, chunk=8), resumed.append)
    assert "resuming, 8 done" in resumed[0].message
    assert len(aligned) == 22 and aligned.n_failed == 2
    reasons = {Path(r.path).name: r.reason for r in aligned.failures()}
    assert reasons["blank.png"] == "no face found"
    assert reasons["text.jpg"].startswith("unreadable:") and "text.jpg" in reasons["text.jpg"]
    ok_rows = np.flatnonzero(aligned.ok)
    assert ok_rows.size == 20
    assert aligned.crops.shape == (22, 112, 112, 3) and aligned.crops[ok_rows].mean() > 40
    record = aligned.records[int(ok_rows[0])]
    assert record.detector == "landmarker" and record.quality["interocular"] > 10
    summary = json.loads((folder / "complete.json").read_text())
    assert summary == {"n": 22, "n_ok": 20, "n_failed": 2, "reasons": {"unreadable": 1, "no face found": 1},
                       "detectors": {"landmarker": 20}}
    assert (folder / "manifest.csv").read_text().count("\n") == 23

    again = []
    reused = run_to_completion(align_images(items, name="faces", cache_root=cache_root), again.append)
    assert again == [] and reused.folder == aligned.folder           # complete cache: nothing recomputed
    other = AlignSettings(pad=0.1)
    assert open_cached(items, "faces", other, cache_root=cache_root) is None   # settings are in the key


def test_missing_landmarker_is_an_error_not_a_silent_fallback_cache(small_dataset: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Without face_landmarker.task the cache refuses to fill itself with Haar/BlazeFace crops, and a
    cache explicitly built from fallback crops is never reused by a run that requires the landmarker."""
    from faceapp.core.errors import ModelAssetError

    monkeypatch.setenv("FACEAPP_MODEL_DIR", str(tmp_path / "no-models"))
    monkeypatch.setenv("FACEAPP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FACEAPP_ASSET_BASE_URL", "http://127.0.0.1:9")   # offline: the download is refused
    items = scan_dataset(DatasetSpec(str(small_dataset))).items
    with pytest.raises(ModelAssetError, match="face_landmarker.task.*FACEAPP_MODEL_DIR"):
        run_to_completion(align_images(items, name="faces", cache_root=tmp_path / "cache"))
    assert not any((tmp_path / "cache").glob("*/complete.json"))

    rough = AlignSettings(require_landmarker=False)
    aligned = run_to_completion(align_images(items, name="faces", settings=rough, cache_root=tmp_path / "cache"))
    assert any(r.ok for r in aligned.records)
    assert {r.detector for r in aligned.records if r.ok} <= {"blazeface", "haar"}
    assert open_cached(items, "faces", rough, tmp_path / "cache") is not None
    assert open_cached(items, "faces", AlignSettings(), tmp_path / "cache") is None


def test_the_alignment_template_is_part_of_the_cache_key(tmp_path: Path) -> None:
    """``template="turned"`` crops are cached apart from the default (standard) ones."""
    from faceapp.data.cache import AlignSettings, cache_key
    from faceapp.data.datasets import ImageItem

    items = [ImageItem(tmp_path / "a.jpg", "x")]
    (tmp_path / "a.jpg").write_bytes(b"x")
    standard, turned = AlignSettings(), AlignSettings(template="turned")
    assert cache_key(items, standard, "v") != cache_key(items, turned, "v")
    assert cache_key(items, standard, "v") == cache_key(items, AlignSettings(template="standard"), "v")
