"""``faceapp train / eval / losses / cache`` in-process through ``faceapp.cli.main.main``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faceapp.cli.main import main
from faceapp.core.errors import ExitCode
from faceapp.embedding import read_card

TINY = ["--backbone", "tiny", "--input-size", "64", "--batch-size", "20", "--threads", "1", "--log-every", "2",
        "--no-augment", "--warmup-epochs", "0"]


def _lfw(att: Path, tmp: Path) -> tuple[Path, Path]:
    root = tmp / "lfw"
    for person in ("s31", "s32", "s33", "s34"):
        (root / person).mkdir(parents=True)
        for i in (1, 2, 3):
            shutil.copy(att / person / f"{i}.pgm", root / person / f"{person}_{i:04d}.pgm")
    lines = ["1\t4", "s31\t1\t2", "s32\t1\t3", "s33\t2\t3", "s34\t1\t3",
             "s31\t1\ts32\t1", "s32\t2\ts33\t1", "s33\t3\ts34\t3", "s34\t2\ts31\t3"]
    (tmp / "pairs.txt").write_text("\n".join(lines) + "\n")
    return tmp / "pairs.txt", root


def test_losses_lists_every_loss(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["losses"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) >= 13 and any(line.startswith("arcface ") for line in lines)
    assert main(["losses", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"arcface", "triplet", "sphereface"} <= {r["name"] for r in rows}
    assert next(r for r in rows if r["name"] == "triplet")["pairs"] is True


@pytest.mark.slow
def test_train_then_eval(att: Path, mediapipe_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs, root = _lfw(att, tmp_path)
    out = tmp_path / "models" / "clitiny"
    code = main(["train", "--data", f"{att}::identities=s1-s10::max_per_identity=6", "--loss", "cosface",
                 "--loss-param", "m=0.2", "--epochs", "2", "--val-pairs", str(pairs), "--val-root", str(root),
                 "--out", str(out), "--run-dir", str(tmp_path / "run"), "--json", *TINY])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert Path(result["model_dir"]) == out and result["steps"] == 6
    assert "[train]" in captured.err and "[validate]" in captured.err
    card = read_card(out)
    assert card["name"] == "clitiny" and card["loss"]["params"]["m"] == 0.2
    assert card["metrics"]["validation"]["protocol"] == "pairs.txt"

    assert main(["eval", "--model", str(out), "--pairs", str(pairs), "--root", str(root), "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_pairs"] == 8 and report["n_failed_images"] == 0 and 0.0 <= report["accuracy"] <= 1.0
    assert main(["eval", "--model", str(out), "--pairs", str(pairs), "--root", str(root)]) == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "EER" in text and "clitiny@" in text
    assert "test" not in read_card(out)["metrics"]
    assert main(["eval", "--model", str(out), "--pairs", str(pairs), "--root", str(root), "--write-card",
                 "--quiet"]) == 0
    written = read_card(out)["metrics"]["test"]["pairs.txt"]
    assert written["accuracy"] == report["accuracy"] and written["protocol"] == "pairs.txt"
    assert read_card(out)["metrics"]["validation"]["protocol"] == "pairs.txt"     # the rest of the card kept
    capsys.readouterr()

    # resuming a finished run with another architecture: a clear error, exit code 8
    code = main(["train", "--data", f"{att}::identities=s1-s10::max_per_identity=6", "--loss", "cosface",
                 "--epochs", "3", "--embedding-dim", "64", "--resume", str(tmp_path / "run" / "last.pt"),
                 "--out", str(tmp_path / "m2"), "--run-dir", str(tmp_path / "run2"), "--val-holdout", "0", *TINY])
    assert code == ExitCode.INCOMPATIBLE
    assert "different architecture" in capsys.readouterr().err


def test_bad_input_exit_codes(att: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["train", "--data", str(tmp_path / "empty"), *TINY]) == ExitCode.DATASET
    assert "has no identity sub-folders" in capsys.readouterr().err
    assert main(["train", "--data", f"{att}::colour=red"]) == ExitCode.DATASET
    assert "unknown option 'colour'" in capsys.readouterr().err
    assert main(["train", "--data", str(att), "--val-folds", "nine"]) == ExitCode.DATASET
    assert "expected numbers separated by commas" in capsys.readouterr().err
    assert main(["train"]) == ExitCode.DATASET
    assert "no training data" in capsys.readouterr().err
    (tmp_path / "pairs.txt").write_text("1\ns1\t1\t2\ns1\t1\ts2\t1\n")
    assert main(["eval", "--pairs", str(tmp_path / "pairs.txt"), "--root", str(tmp_path)]) == ExitCode.DATASET
    assert "missing under" in capsys.readouterr().err


def test_cache_command(att: Path, mediapipe_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["cache", f"{att}::identities=s1-s2", "--cache-dir", str(tmp_path), "--json", "--quiet"])
    assert code == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["n"] == 20 and entry["n_ok"] == 20 and entry["identities"] == 2
    assert Path(entry["folder"]).parent == tmp_path
