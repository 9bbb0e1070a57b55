"""scripts/calibrate_thresholds.py: every pair of the protocol's people is scored, the thresholds sit at the
asked false-accept rates, and --write puts them into the model card (weights untouched)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from faceapp.embedding.embedder import default_model_dir
from faceapp.embedding.model_folder import read_card, weights_sha256

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "calibrate_thresholds.py"


def _script():
    spec = importlib.util.spec_from_file_location("calibrate_thresholds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_calibrates_on_all_pairs_and_writes_the_card(cfp: Path, mediapipe_models: Path, tmp_path: Path, capsys) -> None:
    shipped = default_model_dir()
    assert shipped is not None, "models/default is part of the repository"
    model = tmp_path / "model"
    shutil.copytree(shipped, model)
    before = read_card(model)
    code = _script().main(["--model", str(model), "--pairs", str(cfp), "--format", "cfp", "--protocol", "FF",
                           "--folds", "10", "--verify-far", "1e-2", "--identify-far", "1e-3", "--write"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    n = out["images"]
    assert out["people"] == 50 and out["genuine_pairs"] + out["impostor_pairs"] == n * (n - 1) // 2
    assert out["verify_far_measured"] <= 1e-2 and out["identify_far_measured"] <= 1e-3
    assert out["identify"] >= out["verify"]                      # a stricter FAR needs a higher threshold
    assert 0.5 < out["verify_tar"] <= 1.0                         # the trained model separates these people
    card = read_card(model)
    assert card["thresholds"]["verify"] == out["verify"] and card["thresholds"]["identify"] == out["identify"]
    assert card["thresholds"]["target_far"] == pytest.approx(1e-2)
    assert card["weights_sha256"] == before["weights_sha256"] == weights_sha256(model)
