"""scripts/train_gpu.py: trains from a pack, honours exclusions and the time budget, and its float16 bundle
turns back into a model folder the Embedder loads with the same embeddings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceapp.embedding.embedder import Embedder

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def att_pack(att: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """AT&T people s1-s12 (resized to 112x112, as packed crops), named like the trainer names identities."""
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


def test_load_pack_excludes_a_numeric_range(att_pack: Path) -> None:
    train_gpu = _script("train_gpu")
    crops, labels, identities, card = train_gpu.load_pack(str(att_pack), ["att:3-5"], threads=2)
    assert crops.shape == (90, 112, 112, 3) and crops.dtype == np.uint8
    assert identities == [f"att/{i:03d}" for i in (1, 2, 6, 7, 8, 9, 10, 11, 12)]
    assert sorted(set(labels.tolist())) == list(range(9)) and card[0]["name"] == "att"


def test_train_bundle_unbundle_round_trip(att_pack: Path, tmp_path: Path) -> None:
    train_gpu = _script("train_gpu")
    out, bundle = tmp_path / "model", tmp_path / "model.pt"
    rc = train_gpu.main(["--pack", str(att_pack), "--out", str(out), "--bundle", str(bundle), "--backbone", "resnet9",
                         "--backbone-param", "width=0.25", "--epochs", "3", "--batch", "32", "--exclude", "att:12-12",
                         "--device", "cpu"])
    assert rc == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["train_identities"] == 11 and card["train_images"] == 110
    history = card["training"]["history"]
    assert len(history) == 3 and history[-1]["loss"] < history[0]["loss"]      # it learned something
    assert card["training"]["steps"] == 3 * (110 // 32)
    back = tmp_path / "back"
    assert train_gpu.main(["--unbundle", str(bundle), "--out", str(back), "--name", "renamed"]) == 0
    a, b = Embedder.load(out, device="cpu"), Embedder.load(back, device="cpu")
    assert b.name == "renamed" and b.card["weights_carried_as"].startswith("float16")
    z = np.load(att_pack)
    crops = np.stack([cv2.imdecode(z["blob"][z["offsets"][i]:z["offsets"][i + 1]], cv2.IMREAD_COLOR) for i in range(8)])
    ea, eb = a.embed(crops), b.embed(crops)
    assert np.abs(ea - eb).max() < 5e-3 and float((ea * eb).sum(1).min()) > 0.9999


def test_budget_fits_the_schedule(att_pack: Path, tmp_path: Path) -> None:
    train_gpu = _script("train_gpu")
    rc = train_gpu.main(["--pack", str(att_pack), "--out", str(tmp_path / "m"), "--backbone", "tiny", "--epochs", "500",
                         "--batch", "32", "--budget", "3", "--device", "cpu"])
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    assert rc == 0 and card["training"]["steps"] < 500 * (120 // 32)              # stopped by the budget
    assert card["train_time_s"] < 30 and card["training"]["history"][-1]["lr"] < 0.01   # and ended its schedule
