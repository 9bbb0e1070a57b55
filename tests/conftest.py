"""Shared test setup: real datasets and MediaPipe models from ../shared, isolated user state.

Tests never skip for a missing dataset or model: they fail with a message saying where to put it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("FACEAPP_MODEL_DIR", str(SHARED / "models"))
os.environ.setdefault("FACEAPP_DATASETS", str(SHARED / "datasets"))
for _name in ("FACEAPP_MODEL_DIR", "FACEAPP_DATASETS"):
    # the README passes FACEAPP_MODEL_DIR=../shared/models: made absolute once, so links, copies, other working
    # directories and subprocesses all see the same folder as the test that started them
    os.environ[_name] = str(Path(os.environ[_name]).expanduser().resolve())
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True, scope="session")
def _isolated_user_state(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point data/cache dirs and the database at a per-session temp folder, never the user's."""
    root = tmp_path_factory.mktemp("faceapp-user")
    os.environ["FACEAPP_DATA_DIR"] = str(root / "data")
    os.environ["FACEAPP_CACHE_DIR"] = str(root / "cache")
    os.environ["FACEAPP_KEY_DIR"] = str(root / "keys")      # gallery key files, never the user's
    os.environ["FACEAPP_KEYRING"] = "off"                   # never the user's OS keyring (tests set their own)
    for name in ("FACEAPP_DB", "FACEAPP_GALLERY_KEY", "FACEAPP_GALLERY_ENCRYPTION", "FACEAPP_EXPORT_PASSPHRASE"):
        os.environ.pop(name, None)


@pytest.fixture(scope="session")
def datasets() -> Path:
    """The bundled datasets root; fails (not skips) when absent."""
    root = Path(os.environ["FACEAPP_DATASETS"]).expanduser().resolve()
    assert (root / "att_faces").is_dir(), f"datasets not found at {root}: set FACEAPP_DATASETS"
    return root


@pytest.fixture(scope="session")
def mediapipe_models() -> Path:
    """Folder holding face_landmarker.task and face_detection_short_range.tflite, as an absolute path.

    The README runs the tests with a relative ``FACEAPP_MODEL_DIR=../shared/models``: resolved here, so a
    test may link or copy from it, or change the working directory, without the path going stale."""
    root = Path(os.environ["FACEAPP_MODEL_DIR"]).expanduser().resolve()
    assert (root / "face_landmarker.task").is_file(), f"MediaPipe models not found in {root}: set FACEAPP_MODEL_DIR"
    return root


@pytest.fixture(scope="session")
def att(datasets: Path) -> Path:
    return datasets / "att_faces"


@pytest.fixture(scope="session")
def cfp(datasets: Path) -> Path:
    return datasets / "cfp"


@pytest.fixture(scope="session")
def celeba(datasets: Path) -> Path:
    return datasets / "celeba_subset"


@pytest.fixture(scope="session")
def att_pack(att: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small pack of AT&T crops (tests of packs and of the trainer): people s1-s12, ten photos each resized to
    112x112 (no alignment: the pack's plumbing is under test), WebP-encoded as ``faceapp.data.pack`` writes
    them, named ``att/001``..``att/012``."""
    import cv2

    blobs, labels, names = [], [], []
    for person in range(1, 13):
        names.append(f"att/{person:03d}")
        for i in range(1, 11):
            img = cv2.resize(cv2.imread(str(att / f"s{person}" / f"{i}.pgm")), (112, 112))
            blobs.append(cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 80])[1].tobytes())
            labels.append(person - 1)
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    path = tmp_path_factory.mktemp("pack") / "att.npz"
    np.savez(path, blob=np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets=offsets,
             labels=np.asarray(labels, dtype=np.int32), identities=np.asarray(names),
             data_card=np.asarray(json.dumps([{"name": "att", "images": len(blobs)}])))
    return path
