"""``faceapp train`` options of the GPU path (packed crops, precision, data on the device, time budget),
run on the CPU: a pack trains through the command line exactly as the lent GPU machine runs it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceapp.cli.main import main
from faceapp.core.errors import ExitCode
from faceapp.embedding import read_card

TINY = ["--backbone", "tiny", "--input-size", "64", "--batch-size", "20", "--threads", "1", "--log-every", "2",
        "--no-augment", "--warmup-epochs", "0"]


def _pack(att: Path, path: Path) -> Path:
    """AT&T s1-s6, five photos each resized to 112x112, written with the trainer's pack writer."""
    from faceapp.data.labelled import CropTable, LabelledCrops
    from faceapp.data.pack import write_pack

    class Crops:                       # what a CropTable reads: a named set of crops with identities
        name, paths = "att", []
        crops = np.stack([cv2.resize(cv2.imread(str(att / f"s{p}" / f"{i}.pgm")), (112, 112))
                          for p in range(1, 7) for i in range(1, 6)])

        def __len__(self) -> int:
            return len(self.crops)

    labels = np.repeat(np.arange(6), 5)
    data = LabelledCrops(CropTable([Crops()], np.stack([np.zeros(30, dtype=np.int64), np.arange(30)], 1)), labels,
                         [f"att/s{p}" for p in range(1, 7)])
    return write_pack(path, data, [{"name": "att", "path": str(att)}])


def test_options_reach_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", "p.npz::exclude=att/s6", "--precision", "bf16", "--data-on-device", "off",
                 "--time-budget-s", "90", "--dry-run", "--json"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert (config["precision"], config["data_on_device"], config["time_budget_s"]) == ("bf16", "off", 90.0)
    assert config["data"][0]["exclude"] == "att/s6" and "amp" not in config
    assert main(["train", "--data", "p.npz", "--no-amp", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "fp32"
    code = main(["train", "--data", "p.npz", "--no-amp", "--precision", "bf16", "--dry-run"])
    assert code == ExitCode.DATASET and "--no-amp" in capsys.readouterr().err


def test_train_from_a_pack(att: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = _pack(att, tmp_path / "crops.npz")
    out = tmp_path / "model"
    code = main(["train", "--data", f"{pack}::exclude=att/s6", "--epochs", "2", "--precision", "bf16",
                 "--data-on-device", "on", "--time-budget-s", "600", "--val-holdout", "0", "--out", str(out), "--run-dir",
                 str(tmp_path / "run"), "--json", *TINY])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["steps"] == 2          # 25 crops, batches of 20: one step an epoch
    card = read_card(out)
    assert card["train_identities"] == 5 and card["data"][0]["layout"] == "pack"
    assert card["training"]["precision"] == "bf16" and card["training"]["data_on_device"] is True
    assert card["training"]["budget"]["time_budget_s"] == 600.0
