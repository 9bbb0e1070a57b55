"""``faceapp benchmark-losses`` in-process through ``faceapp.cli.main.main``: a tiny real sweep whose
JSON and Markdown agree with ``faceapp eval`` on the produced models, a rerun that skips, and the exit
codes of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceapp.cli.main import main
from faceapp.core.errors import ExitCode
from tests.services.analyst_data import att_lfw_pairs

TINY = ["--backbone", "tiny", "--input-size", "64", "--batch-size", "40", "--pk-k", "5", "--threads", "1",
        "--no-augment", "--warmup-epochs", "0", "--log-every", "1"]


@pytest.fixture(scope="module")
def pairs(att: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return att_lfw_pairs(att, tmp_path_factory.mktemp("lfw"), per_kind=10)


def sweep_args(att: Path, pairs: tuple[Path, Path], out: Path, *extra: str) -> list[str]:
    return ["benchmark-losses", "--data", f"{att}::identities=s1-s12", *TINY, "--out", str(out),
            "--pairs", str(pairs[0]), "--root", str(pairs[1]), *extra]


def test_sweep_json_markdown_and_eval_agree(att: Path, mediapipe_models: Path, pairs: tuple[Path, Path],
                                            tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    args = sweep_args(att, pairs, out, "--losses", "cosface,siamese", "--max-steps", "2",
                      "--loss-param", "cosface:m=0.2", "--loss-setting", "siamese:lr=0.05", "--json")
    assert main(args) == 0
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert "[benchmark] 2/2" in captured.err and "cosface: [train]" not in captured.err
    assert "cosface: epoch 1/1" in captured.err                            # trainer events tagged with their loss
    assert results["command"].startswith("faceapp benchmark-losses --data ") and "--loss-param cosface:m=0.2" in results["command"]
    assert results["budget"] == {"epochs": 0.0, "max_steps": 2, "time_budget_min": 0.0}
    rows = {r["loss"]: r for r in results["losses"]}
    assert rows["cosface"]["loss_params"]["m"] == 0.2 and rows["siamese"]["settings"] == {"lr": 0.05}
    assert rows["cosface"]["steps"] == rows["siamese"]["steps"] == 2 and rows["siamese"]["sampler"] == "pk"
    for loss, row in rows.items():
        assert row["status"] == "done"
        assert main(["eval", "--model", str(out / loss / "model"), "--pairs", str(pairs[0]), "--root", str(pairs[1]),
                     "--json", "--quiet"]) == 0
        report = json.loads(capsys.readouterr().out)
        mine = row["test"]["pairs.txt"]
        assert (mine["accuracy"], mine["eer"], mine["tar_at_far"]) == (report["accuracy"], report["eer"], report["tar_at_far"])
        md_row = next(line for line in (out / "results.md").read_text().splitlines() if line.startswith(f"| `{loss}`"))
        assert f"| {report['accuracy'] * 100:.2f} ± {report['accuracy_std'] * 100:.2f} | {report['eer'] * 100:.2f} |" in md_row

    # the same command again: everything skipped, Markdown table on stdout
    assert main(args[:-1]) == 0
    captured = capsys.readouterr()
    assert "cosface: already done" in captured.err and "[train]" not in captured.err
    assert captured.out.startswith("# Loss benchmark") and "| `siamese` | 128 | pk (P x K = 8 x 5) |" in captured.out
    assert "skipped, already finished: cosface, siamese" in captured.out


def test_dry_run_prints_the_plan(att: Path, pairs: tuple[Path, Path], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(sweep_args(att, pairs, tmp_path / "b", "--cfp", "cfp-folder-not-read-in-a-dry-run", "--protocols", "FP",
                           "--folds", "9,10", "--time-budget", "3", "--dry-run", "--json")) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan["losses"]) == 13 and plan["losses"][0] == "softmax"
    assert plan["budget"] == {"epochs": 0.0, "max_steps": 0, "time_budget_min": 3.0}    # --time-budget alone
    assert [(p["format"], p["protocol"], p["folds"]) for p in plan["protocols"]] == [("cfp", "FP", [9, 10]), ("lfw", "", [9, 10])]
    assert main(sweep_args(att, pairs, tmp_path / "b", "--epochs", "3", "--time-budget", "3", "--dry-run", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["budget"]["epochs"] == 3.0                  # both: the smallest wins
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(("extra", "code", "message"), [
    (["--losses", "arcface,tripplet"], ExitCode.USAGE, "unknown loss 'tripplet'; known: arcface, center, contrastive"),
    (["--loss-param", "s=32"], ExitCode.USAGE, "expected LOSS:NAME=VALUE"),
    (["--loss-param", "arcface:q=1"], ExitCode.USAGE, "arcface: unknown hyper-parameter(s) q"),
    (["--losses", "arcface", "--loss-setting", "triplet:lr=0.1"], ExitCode.USAGE, "'triplet', which is not in the benchmark"),
    (["--loss-setting", "triplet:lr=fast"], ExitCode.DATASET, "expected a number, got 'fast'"),
    (["--loss-setting", "triplet:batch_size=8"], ExitCode.DATASET, "not a per-loss setting"),
    (["--protocols", "FF,XP", "--cfp", "x"], ExitCode.DATASET, "--protocols 'FF,XP'"),
    (["--epochs", "0", "--max-steps", "0"], ExitCode.DATASET, "epochs must be at least 1"),
])
def test_bad_input_exit_codes(extra: list[str], code: ExitCode, message: str, att: Path, pairs: tuple[Path, Path],
                              tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(sweep_args(att, pairs, tmp_path / "b", *extra)) == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_missing_inputs(att: Path, pairs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["benchmark-losses", "--data", str(att), "--out", str(tmp_path / "b"), *TINY]
    assert main(args) == ExitCode.DATASET
    assert "no test protocol: give --cfp DIR" in capsys.readouterr().err
    assert main([*args, "--pairs", str(tmp_path / "nope.txt")]) in (ExitCode.INPUT_FILE, ExitCode.DATASET)
    assert "nope.txt" in capsys.readouterr().err
    assert main(["benchmark-losses", "--data", str(tmp_path / "no-such-folder"), "--out", str(tmp_path / "b"),
                 "--pairs", str(pairs[0]), "--root", str(pairs[1]), *TINY]) == ExitCode.DATASET
    assert "no-such-folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:                     # --out is required (argparse)
        main(["benchmark-losses", "--pairs", str(pairs[0])])
    assert exit_info.value.code == 2
