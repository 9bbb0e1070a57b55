"""The loss benchmark on real AT&T crops (real MediaPipe alignment, tiny backbone, CPU): a sweep of a
classifier loss, a pair loss and a diverging one writes the table, its numbers are those of
``evaluate`` on the exported models, a rerun skips finished losses, a cancelled loss resumes, a changed
budget is refused, a time budget becomes the same images for every loss."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from faceapp.core.errors import CancelledError, DatasetError, IncompatibleError
from faceapp.core.progress import CancelToken, Progress, run_to_completion
from faceapp.data import DatasetSpec, evaluate
from faceapp.nn.losses import LossConfigError
from faceapp.training import AugmentConfig, TrainConfig
from faceapp.training.benchmark import (BenchmarkConfig, EvalProtocol, benchmark_losses, check_config, load_results,
                                        resolve_losses)
from tests.services.analyst_data import att_lfw_pairs


def base_config(att: Path) -> TrainConfig:
    """AT&T s1-s20 (2 held out for validation), tiny net at 64 px, batches of 40 (P x K = 8 x 5)."""
    config = TrainConfig(data=[DatasetSpec(path=str(att), identities="s1-s20")], backbone="tiny", input_size=64,
                         batch_size=40, pk_k=5, warmup_epochs=0, log_every=1, augment=AugmentConfig.off(), threads=1)
    config.validation.holdout_pairs = 200
    return config


def bench(att: Path, folder: Path, pairs: tuple[Path, Path], **kw) -> BenchmarkConfig:
    values = {"losses": ["arcface", "triplet", "cosface"], "epochs": 1.0, "loss_settings": {"cosface": {"lr": 1e30}},
              "loss_params": {"arcface": {"s": 32}}, "protocols": [EvalProtocol("lfw", str(pairs[0]), root=str(pairs[1]))],
              **kw}
    return BenchmarkConfig(base=base_config(att), out=str(folder), command="test sweep", **values)


@pytest.fixture(scope="module")
def pairs(att: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return att_lfw_pairs(att, tmp_path_factory.mktemp("lfw"))


@pytest.fixture(scope="module")
def sweep(att: Path, mediapipe_models: Path, pairs: tuple[Path, Path],
          tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Progress], object]:
    folder = tmp_path_factory.mktemp("bench") / "sweep"
    events: list[Progress] = []
    result = run_to_completion(benchmark_losses(bench(att, folder, pairs)), events.append)
    return folder, events, result


def test_sweep_writes_the_table_with_eval_numbers(sweep, pairs: tuple[Path, Path]) -> None:
    folder, events, result = sweep
    assert result.trained == ["arcface", "triplet"] and result.failed == ["cosface"] and result.skipped == []
    data = json.loads((folder / "results.json").read_text())
    assert data == load_results(folder) and data["command"] == "test sweep"
    assert data["train_images"] == 180 and data["train_identities"] == 18           # 2 of 20 people held out
    assert data["images_per_loss"] == 180 and data["protocol_names"] == ["pairs.txt"]
    rows = {r["loss"]: r for r in data["losses"]}
    assert list(rows) == ["arcface", "triplet", "cosface"]
    arc, tri, cos = rows["arcface"], rows["triplet"], rows["cosface"]
    assert (arc["sampler"], tri["sampler"], tri["sampler_detail"], tri["miner"]) == ("shuffle", "pk", "P x K = 8 x 5", "semi_hard")
    assert arc["steps"] == tri["steps"] == 5 and arc["images_seen"] == tri["images_seen"] == 200   # same budget
    assert arc["epochs"] == 1.11 and arc["loss_params"]["s"] == 32.0 and arc["embedding_dim"] == 128
    assert arc["validation"]["protocol"].startswith("hold-out") and arc["images_per_s"] > 0
    assert cos["status"] == "diverged" and "nan" in cos["error"].lower() and "test" not in cos
    assert cos["settings"] == {"lr": 1e30} and (folder / "cosface" / "result.json").is_file()
    for loss in ("arcface", "triplet"):
        mine = rows[loss]["test"]["pairs.txt"]
        report = run_to_completion(evaluate(folder / loss / "model", "lfw", pairs[0], pairs[1]))
        assert mine["accuracy"] == report.accuracy and mine["eer"] == report.eer
        assert mine["tar_at_far"] == report.tar_at_far and mine["n_pairs"] == 80 and mine["n_failed_pairs"] == 0
        assert 0.5 < report.accuracy <= 1.0                                 # learned something in 5 steps
    md = (folder / "results.md").read_text()
    assert md == result.markdown and "Command: `test sweep`" in md
    assert "| loss | dim | sampler | epochs | steps | train time | images/s | hold-out acc % | pairs.txt acc % ± std |" in md
    arc_line = next(line for line in md.splitlines() if line.startswith("| `arcface`"))
    assert f"{arc['test']['pairs.txt']['accuracy'] * 100:.2f} ± " in arc_line and "| 5 |" in arc_line
    assert "**DIVERGED**" in next(line for line in md.splitlines() if line.startswith("| `cosface`"))
    assert "lr=1e+30" in md and "pk (P x K = 8 x 5, semi_hard)" in md
    tags = {e.message.split(":")[0] for e in events if e.stage == "train"}
    assert tags == {"arcface", "triplet", "cosface"}
    assert [e.done for e in events if e.stage == "benchmark" and "training" not in e.message] == [1, 2, 3]


def test_rerun_skips_finished_losses_and_retries_failed_ones(sweep, att: Path, pairs: tuple[Path, Path]) -> None:
    folder, _, first = sweep
    before = (folder / "arcface" / "result.json").read_text()
    events: list[Progress] = []
    again = run_to_completion(benchmark_losses(bench(att, folder, pairs)), events.append)
    assert again.skipped == ["arcface", "triplet", "cosface"] and again.trained == []
    assert not [e for e in events if e.stage in ("train", "embed")]
    assert (folder / "arcface" / "result.json").read_text() == before
    assert [r["loss"] for r in again.results["losses"]] == ["arcface", "triplet", "cosface"]
    assert len(again.results["invocations"]) == 2

    with pytest.raises(IncompatibleError, match="max_steps"):          # another budget: not comparable
        run_to_completion(benchmark_losses(bench(att, folder, pairs, max_steps=3)))
    with pytest.raises(IncompatibleError, match=r"arcface.*loss_params\.s: 32\.0 -> 30\.0"):
        run_to_completion(benchmark_losses(bench(att, folder, pairs, loss_params={"arcface": {"s": 30}})))

    fixed = bench(att, folder, pairs, losses=["cosface"], loss_params={}, loss_settings={"cosface": {"lr": 0.05}},
                  retry_failed=True)
    retried = run_to_completion(benchmark_losses(fixed))
    assert retried.trained == ["cosface"]
    rows = {r["loss"]: r for r in retried.results["losses"]}
    assert list(rows) == ["cosface", "arcface", "triplet"]                # this sweep's losses first, then the others
    assert rows["cosface"]["status"] == "done" and rows["cosface"]["images_seen"] == 200


def test_cancelled_loss_resumes_from_its_checkpoint(att: Path, mediapipe_models: Path, pairs: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    config = bench(att, tmp_path / "b", pairs, losses=["softmax", "contrastive"], loss_settings={}, loss_params={})
    token = CancelToken()

    def cancel_in_contrastive(event: Progress) -> None:
        if event.stage == "train" and event.message.startswith("contrastive") and event.done == 2:
            token.cancel()

    with pytest.raises(CancelledError, match="contrastive.*run the same command again"):
        run_to_completion(benchmark_losses(config, token), cancel_in_contrastive)
    assert json.loads((tmp_path / "b" / "softmax" / "result.json").read_text())["status"] == "done"
    assert (tmp_path / "b" / "contrastive" / "run" / "last.pt").is_file()
    assert not (tmp_path / "b" / "contrastive" / "result.json").exists()

    events: list[Progress] = []
    result = run_to_completion(benchmark_losses(copy.deepcopy(config)), events.append)
    assert result.skipped == ["softmax"] and result.trained == ["contrastive"]
    row = next(r for r in result.results["losses"] if r["loss"] == "contrastive")
    assert row["resumed"] is True and row["steps"] == 5
    assert [e.done for e in events if e.stage == "train"] == [3, 4, 5]      # steps 1-2 were done before the cancel


def test_time_budget_becomes_the_same_images_for_every_loss(att: Path, mediapipe_models: Path,
                                                            pairs: tuple[Path, Path], tmp_path: Path) -> None:
    config = bench(att, tmp_path / "t", pairs, losses=["softmax", "siamese"], loss_settings={}, loss_params={},
                   epochs=0.0, max_steps=2, time_budget_min=0.5, calibration_steps=3)
    result = run_to_completion(benchmark_losses(config))
    cal = result.results["calibration"]
    assert cal["loss"] == "softmax" and cal["steps"] == 3 and cal["images_per_s"] > 0
    assert result.results["images_per_loss"] == min(80, int(0.5 * 60 * cal["images_per_s"]))
    assert not (tmp_path / "t" / "_calibration").exists()
    assert [r["images_seen"] for r in result.results["losses"]] == [80, 80]
    assert "time converted at" in result.markdown


def test_bad_settings_fail_before_any_work(att: Path, pairs: tuple[Path, Path], tmp_path: Path) -> None:
    assert resolve_losses(["all"])[:3] == ["softmax", "modified_softmax", "l2_softmax"] and len(resolve_losses(["all"])) == 13
    assert resolve_losses(["triplet", "ArcFace", "triplet"]) == ["triplet", "arcface"]
    with pytest.raises(LossConfigError, match="unknown loss 'arcfase'; known: arcface, center"):
        check_config(bench(att, tmp_path, pairs, losses=["arcfase"]))
    with pytest.raises(LossConfigError, match="'sphereface', which is not in the benchmark"):
        check_config(bench(att, tmp_path, pairs, loss_params={"sphereface": {"m": 2}}))
    with pytest.raises(LossConfigError, match="arcface: hyper-parameter 's' = 1000.0 is outside"):
        check_config(bench(att, tmp_path, pairs, loss_params={"arcface": {"s": 1000}}))
    with pytest.raises(DatasetError, match="loss setting cosface:batch_size: not a per-loss setting"):
        check_config(bench(att, tmp_path, pairs, loss_settings={"cosface": {"batch_size": 8}}))
    with pytest.raises(DatasetError, match="no budget"):
        check_config(bench(att, tmp_path, pairs, epochs=0.0))
    with pytest.raises(DatasetError, match="no test protocol"):
        check_config(bench(att, tmp_path, pairs, protocols=[]))
    with pytest.raises(DatasetError, match="is also a test protocol"):
        config = bench(att, tmp_path, pairs)
        config.base.validation.pairs, config.base.validation.root = str(pairs[0]), str(pairs[1])
        run_to_completion(benchmark_losses(config))
    assert not (tmp_path / "plan.json").exists()
