"""The int8 engine: the shipped int8 network is what ``auto`` runs and agrees with fp32 on real faces;
``faceapp quantize`` writes file and card; a changed, foreign or missing int8 file is named and never used."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from faceapp.cli.main import main
from faceapp.core.errors import ExitCode, IncompatibleError
from faceapp.embedding.embedder import Embedder
from faceapp.embedding.int8 import INT8_FILE, int8_entry
from faceapp.embedding.model_folder import read_card, weights_sha256

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "models" / "default"


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_the_shipped_int8_network_is_what_auto_runs_and_agrees_with_fp32(real_crops: np.ndarray) -> None:
    entry = int8_entry(read_card(DEFAULT))
    assert entry is not None and (DEFAULT / entry["file"]).is_file()
    assert entry["weights_sha256"] == weights_sha256(DEFAULT)
    fast = Embedder.load(DEFAULT)
    fp32 = Embedder.load(DEFAULT, engine="onnxruntime")
    assert (fast.engine, fp32.engine) == ("onnxruntime-int8", "onnxruntime")
    assert fast.model_id == fp32.model_id                       # same weights: templates stay comparable
    a, b = fast.embed(real_crops), fp32.embed(real_crops)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert cosines(a, b).min() > 0.97
    # who is who is preserved: each int8 embedding is nearest to its own fp32 embedding
    assert np.array_equal((a @ b.T).argmax(axis=1), np.arange(len(real_crops)))
    assert np.abs(fast.embed_one(real_crops[2]) - a[2]).max() < 1e-5        # batch 1 = batched


@pytest.fixture(scope="module")
def quantized(att_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A copy of models/default quantised by the command line on 32 AT&T faces (min-max: quick)."""
    folder = tmp_path_factory.mktemp("int8") / "default"
    shutil.copytree(DEFAULT, folder)
    (folder / INT8_FILE).unlink()
    card = read_card(folder)
    card.pop("int8")
    (folder / "model_card.json").write_text(json.dumps(card))
    assert Embedder.load(folder).engine == "onnxruntime"           # none yet: the fp32 engine
    code = main(["quantize", "--model", str(folder), "--data", str(att_pack), "--crops", "32", "--check", "32",
                 "--method", "minmax", "--quiet", "--json"])
    assert code == 0
    return folder, read_card(folder)["int8"]


def test_quantize_writes_the_file_and_its_lineage_and_auto_uses_it(quantized, real_crops: np.ndarray) -> None:
    folder, entry = quantized
    assert (folder / INT8_FILE).stat().st_size == entry["bytes"] > 500_000
    assert entry["weights_sha256"] == weights_sha256(folder)
    assert entry["calibration"] == {"data": "att (32 aligned faces, seed 0)", "crops": 32, "method": "minmax"}
    assert entry["agreement_with_fp32"]["crops"] == 32 and entry["agreement_with_fp32"]["mean_cos"] > 0.97
    fast = Embedder.load(folder)
    assert fast.engine == "onnxruntime-int8"
    assert cosines(fast.embed(real_crops), Embedder.load(folder, engine="onnxruntime").embed(real_crops)).min() > 0.95


@pytest.mark.parametrize("damage", ["changed", "missing", "other-weights"])
def test_a_damaged_or_foreign_int8_file_is_named_and_never_used(quantized, tmp_path: Path, damage: str,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "m"
    shutil.copytree(quantized[0], folder)
    path = folder / INT8_FILE
    if damage == "changed":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        expected = "does not match its model card's SHA-256"
    elif damage == "missing":
        path.unlink()
        expected = "int8 network missing"
    else:
        card = read_card(folder)
        card["int8"]["weights_sha256"] = "0" * 64
        (folder / "model_card.json").write_text(json.dumps(card))
        expected = "was made from other weights"
    with caplog.at_level(logging.WARNING, logger="faceapp.embedding.embedder"):
        fallback = Embedder.load(folder)
    assert fallback.engine == "onnxruntime"
    assert any(expected in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    with pytest.raises(IncompatibleError, match=expected) as raised:
        Embedder.load(folder, engine="onnxruntime-int8")
    assert "faceapp quantize --model" in str(raised.value)


def test_int8_required_where_it_cannot_run_says_why(make_folder) -> None:
    folder, _, _ = make_folder(name="plain", backbone="tiny", dim=32)
    with pytest.raises(IncompatibleError, match="has no int8 network.*faceapp quantize"):
        Embedder.load(folder, engine="onnxruntime-int8")
    assert Embedder.load(folder, engine="auto").engine == "onnxruntime"    # auto: fp32 without one
    assert Embedder.load(DEFAULT, engine="torch").engine == "torch"         # asked for torch: torch


def test_quantize_with_too_few_faces_is_a_dataset_error(quantized, att_pack: Path, capsys) -> None:
    code = main(["quantize", "--model", str(quantized[0]), "--data", str(att_pack), "--crops", "100",
                 "--check", "100", "--quiet"])
    assert code == ExitCode.DATASET
    assert "120 aligned faces, fewer than --crops 100 + --check 100" in capsys.readouterr().err
