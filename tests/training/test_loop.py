"""The training loop on real AT&T crops (real MediaPipe alignment, tiny backbone, CPU): every loss
learns, validation beats chance, resume reproduces the next step exactly, bad input is refused, a pack
trains as its folders do."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from faceapp.core.errors import CancelledError, DatasetError, IncompatibleError
from faceapp.core.progress import CancelToken, Progress, run_to_completion
from faceapp.data import DatasetSpec, evaluate
from faceapp.embedding import Embedder, read_card
from faceapp.nn.losses import list_losses
from faceapp.training import AugmentConfig, TrainConfig, train


def tiny_config(att: Path, tmp: Path, **overrides) -> TrainConfig:
    """8 AT&T identities x 5 images, one full batch per epoch, no augmentation, no validation."""
    config = TrainConfig(
        data=[DatasetSpec(path=str(att), identities="s1-s8", max_per_identity=5)], name="tiny",
        backbone="tiny", input_size=64, epochs=8, batch_size=40, pk_k=5, lr=0.05, warmup_epochs=0,
        schedule="constant", log_every=1, augment=AugmentConfig.off(), run_dir=str(tmp / "run"), out=str(tmp / "model"),
        threads=1)   # one thread: tests run beside other jobs, and OpenMP spinning on a busy 2-core box is ~10x slower
    config.validation.holdout = 0.0
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def losses_of(job) -> list[float]:
    events: list[Progress] = []
    run_to_completion(job, events.append)
    return [e.metrics["loss"] for e in events if e.stage == "train"]


@pytest.mark.slow
@pytest.mark.parametrize("loss", sorted(list_losses()))
def test_every_loss_decreases(loss: str, att: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    values = losses_of(train(tiny_config(att, tmp_path, loss=loss)))
    assert len(values) == 8 and all(np.isfinite(values))
    assert np.mean(values[-3:]) < 0.8 * np.mean(values[:3]), f"{loss}: {values}"


def _lfw_pairs(att: Path, tmp: Path) -> tuple[Path, Path]:
    """An LFW-format protocol over AT&T s31..s40 (people never trained on): 2 folds x 20 pairs per kind."""
    root = tmp / "lfw"
    people = [f"s{i}" for i in range(31, 41)]
    for person in people:
        shutil.copytree(att / person, root / person)
        for i in range(1, 11):
            (root / person / f"{i}.pgm").rename(root / person / f"{person}_{i:04d}.pgm")
    rng = np.random.default_rng(0)
    lines = ["2\t20"]
    for _ in range(2):
        for _ in range(20):
            p = rng.choice(people)
            i, j = rng.choice(np.arange(1, 11), 2, replace=False)
            lines.append(f"{p}\t{i}\t{j}")
        for _ in range(20):
            p, q = rng.choice(people, 2, replace=False)
            lines.append(f"{p}\t{rng.integers(1, 11)}\t{q}\t{rng.integers(1, 11)}")
    pairs = tmp / "pairs.txt"
    pairs.write_text("\n".join(lines) + "\n")
    return pairs, root


@pytest.mark.slow
def test_validation_beats_chance_and_export_matches_eval(att: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    pairs, root = _lfw_pairs(att, tmp_path)
    config = tiny_config(att, tmp_path, loss="arcface", epochs=4, batch_size=50, lr=0.1, schedule="cosine",
                         data=[DatasetSpec(path=str(att), identities="s1-s30")], augment=AugmentConfig())
    config.validation.pairs, config.validation.root, config.validation.format = str(pairs), str(root), "lfw"
    events: list[Progress] = []
    result = run_to_completion(train(config), events.append)
    validations = [e for e in events if e.stage == "validate" and "val_accuracy" in e.metrics]
    assert len(validations) == 4
    assert result.best["accuracy"] > 0.6, result.history            # chance is 0.5
    assert result.best["accuracy"] == max(e.metrics["val_accuracy"] for e in validations)
    card = read_card(result.model_dir)
    assert card["loss"]["name"] == "arcface" and card["data"][0]["identities"] == 30
    assert card["data"][0]["layout"] == "folder" and card["training"]["threads"] == 1
    assert card["metrics"]["validation"]["accuracy"] == result.best["accuracy"]
    assert card["device"] == "cpu" and card["images_per_s"] > 0 and card["training"]["seed"] == 0
    report = run_to_completion(evaluate(result.model_dir, "lfw", pairs, root))
    assert report.accuracy == pytest.approx(result.best["accuracy"], abs=0.03)   # same model, BN folded
    assert Embedder.load(result.model_dir).trained


@pytest.mark.parametrize("loss, sampler, augment_on", [("arcface", "shuffle", "cpu"), ("triplet", "pk", "cpu"),
                                                       ("arcface", "shuffle", "device")])
def test_resume_reproduces_next_step(loss: str, sampler: str, augment_on: str, att: Path, mediapipe_models: Path,
                                     tmp_path: Path) -> None:
    def config(run: str) -> TrainConfig:
        return tiny_config(att, tmp_path, loss=loss, sampler=sampler, epochs=2, batch_size=10, pk_k=2,
                           data=[DatasetSpec(path=str(att), identities="s1-s8", max_per_identity=5)],
                           augment=AugmentConfig(), schedule="cosine", warmup_epochs=0.5, augment_on=augment_on,
                           run_dir=str(tmp_path / run), out=str(tmp_path / run / "model"))

    straight = losses_of(train(config("a")))
    cancel = CancelToken()
    first: list[float] = []
    with pytest.raises(CancelledError, match="resume with --resume"):
        for event in train(config("b"), cancel):
            if event.stage == "train":
                first.append(event.metrics["loss"])
                if event.metrics["step"] == 3:        # mid-epoch: 4 steps per epoch
                    cancel.cancel()
    resumed_config = config("b")
    resumed_config.resume = str(tmp_path / "b" / "last.pt")
    rest = losses_of(train(resumed_config))
    assert first == straight[:3]
    assert rest == straight[3:]                      # bit-identical from the next step on


def test_augmentation_on_the_device_is_used_and_recorded(att: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    """augment_on="device" runs TorchAugmenter in the loop (here on the CPU device; on CUDA "auto" picks it)."""
    def run(where: str) -> tuple[list[float], dict]:
        config = tiny_config(att, tmp_path, epochs=2, batch_size=10, augment=AugmentConfig(flip=0, affine=1.0,
                             erase=1.0), augment_on=where, run_dir=str(tmp_path / where), out=str(tmp_path / where / "m"))
        events: list[Progress] = []
        result = run_to_completion(train(config), events.append)
        return [e.metrics["loss"] for e in events if e.stage == "train"], result.card

    device_losses, card = run("device")
    cpu_losses, cpu_card = run("cpu")
    assert card["training"]["augment_on"] == "device" and cpu_card["training"]["augment_on"] == "cpu"
    assert all(np.isfinite(device_losses)) and len(device_losses) == len(cpu_losses) == 8
    assert device_losses[0] != cpu_losses[0]              # other augmentation code, other first batch


@pytest.mark.parametrize("input_size", [112, 64])
def test_device_batches_are_the_models_input(input_size: int, att: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    """Without augmentation the device path feeds exactly what evaluation and inference feed (colour order,
    normalisation, resize), so a GPU-trained model is scored on the pixels it learned from."""

    from faceapp.training.embed import crops_to_tensor
    from faceapp.training.loop import _Run

    run = _Run(tiny_config(att, tmp_path, input_size=input_size, augment=AugmentConfig(), augment_on="device"), None)
    run_to_completion(run.prepare_data())
    run.build()
    assert run.device_augment is not None
    run.device_augment = lambda x, generator: x          # the augmentation itself is tested in test_torch_augment
    idx = np.arange(6)
    expected = crops_to_tensor(run.train_data.table.crops(idx), run.model_config)
    got = run._device_batch(idx)
    assert got.shape == expected.shape == (6, 3, input_size, input_size)
    error = (got - expected).abs()
    if input_size == 112:
        assert float(error.max()) < 1e-5                  # the very same numbers
    else:                                                 # cv2 INTER_AREA on uint8 vs torch area at a 1.75 factor:
        assert float(error.mean()) < 0.01 and float(error.max()) < 0.3   # ~1 grey level on average (measured 0.008)


def test_resume_from_other_architecture(att: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    run_to_completion(train(tiny_config(att, tmp_path, epochs=1)))
    other = tiny_config(att, tmp_path, epochs=2, embedding_dim=64, resume=str(tmp_path / "run" / "last.pt"))
    with pytest.raises(IncompatibleError, match="embedding_dim: checkpoint 128, this run 64"):
        run_to_completion(train(other))
    other = tiny_config(att, tmp_path, epochs=2, loss="cosface", resume=str(tmp_path / "run" / "last.pt"))
    with pytest.raises(IncompatibleError, match="loss: checkpoint 'arcface', this run 'cosface'"):
        run_to_completion(train(other))


def test_bad_data_is_refused(att: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    one = tiny_config(att, tmp_path, data=[DatasetSpec(path=str(att), identities="s1", max_per_identity=5)])
    with pytest.raises(DatasetError, match="1 identity .* needs at least 2"):
        run_to_completion(train(one))
    singles = tiny_config(att, tmp_path, loss="triplet",
                          data=[DatasetSpec(path=str(att), identities="s1-s8", max_per_identity=1)])
    with pytest.raises(DatasetError, match="unusable for pairs"):
        run_to_completion(train(singles))
    softmax_ok = tiny_config(att, tmp_path, loss="softmax", epochs=1, batch_size=8,
                             data=[DatasetSpec(path=str(att), identities="s1-s8", max_per_identity=1)])
    assert run_to_completion(train(softmax_ok)).steps == 1


def test_validation_on_trained_people_is_refused(cfp: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    config = tiny_config(cfp, tmp_path, data=[DatasetSpec(path=str(cfp), identities="401-402", include_profile=False)])
    config.validation.pairs, config.validation.format, config.validation.folds = str(cfp), "cfp", [9]
    with pytest.raises(DatasetError, match="must not be validated on people it trains on"):
        run_to_completion(train(config))


def test_typos_fail_before_any_alignment(att: Path, tmp_path: Path) -> None:
    from faceapp.nn.losses import LossConfigError

    def events_until_error(config: TrainConfig, error: type[Exception], match: str) -> list[Progress]:
        events: list[Progress] = []
        with pytest.raises(error, match=match):
            for event in train(config):
                events.append(event)
        return events

    fresh = DatasetSpec(path=str(att), identities="s20-s29")        # never aligned in this session
    assert events_until_error(tiny_config(att, tmp_path, data=[fresh], loss="arcfase"), LossConfigError, "arcfase") == []
    config = tiny_config(att, tmp_path, data=[fresh], loss_params={"m": 9.0})
    assert events_until_error(config, LossConfigError, "'m'") == []
    config = tiny_config(att, tmp_path, data=[fresh])
    config.validation.pairs = str(tmp_path / "nope.txt")
    assert events_until_error(config, DatasetError, "nope.txt") == []
    twice = tiny_config(att, tmp_path, data=[fresh, DatasetSpec(path=str(att), identities="s30")])
    assert events_until_error(twice, DatasetError, "two training datasets are named 'att_faces'") == []


def test_cancel_during_validation_resumes_into_it(att: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    def config(run: str) -> TrainConfig:
        c = tiny_config(att, tmp_path, epochs=2, batch_size=10, run_dir=str(tmp_path / run),
                        out=str(tmp_path / run / "model"))
        c.validation.holdout, c.validation.batch_size = 0.25, 4
        return c

    def record(events: list[Progress]) -> list[tuple]:
        return [(e.stage, e.metrics.get("loss"), e.metrics.get("val_accuracy")) for e in events
                if e.stage == "train" or (e.stage == "validate" and "val_accuracy" in e.metrics)]

    straight: list[Progress] = []
    run_to_completion(train(config("a")), straight.append)
    cancel = CancelToken()
    first: list[Progress] = []
    with pytest.raises(CancelledError, match="during validation"):
        for event in train(config("b"), cancel):
            first.append(event)
            if event.stage == "validate":
                cancel.cancel()
    resumed = config("b")
    resumed.resume = str(tmp_path / "b" / "last.pt")
    rest: list[Progress] = []
    run_to_completion(train(resumed), rest.append)
    assert record(first) + record(rest) == record(straight)
    assert len([r for r in record(straight) if r[0] == "validate"]) == 2


def test_lr_schedules() -> None:
    from faceapp.training.loop import lr_factor

    c = TrainConfig(warmup_epochs=1.0, schedule="cosine", min_lr=0.1)
    # 10 steps per epoch, 100 steps: warm-up 1/10 .. 10/10, then cosine from 1 to 0.1
    assert [lr_factor(c, s, 100, 10) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert lr_factor(c, 10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(c, 55, 100, 10) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(c, 100, 100, 10) == pytest.approx(0.1)
    c = TrainConfig(warmup_epochs=0, schedule="step", step_milestones=[0.5, 0.75], step_gamma=0.1)
    assert [lr_factor(c, s, 100, 10) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lr_factor(TrainConfig(warmup_epochs=0, schedule="constant"), 77, 100, 10) == 1.0


@pytest.mark.slow
def test_training_from_a_pack_is_training_from_the_folders(att: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    """scripts/pack_training_crops.py packs the config's aligned data (lossless here); training from the pack is
    the same run, step for step and hold-out split included, as training from the folders."""
    import importlib.util

    from faceapp.training import save_config

    def config(data: list[DatasetSpec], where: str) -> TrainConfig:
        c = TrainConfig(data=data, name="tiny", backbone="tiny", input_size=64, epochs=2, batch_size=10, lr=0.05,
                        schedule="cosine", warmup_epochs=0.5, log_every=1, augment=AugmentConfig(), augment_on="cpu",
                        run_dir=str(tmp_path / where / "run"), out=str(tmp_path / where / "model"), threads=1)
        c.validation.holdout, c.validation.holdout_pairs = 0.2, 40
        return c

    folders = config([DatasetSpec(path=str(att), identities="s1-s10", exclude="s3", max_per_identity=5)], "folders")
    save_config(folders, tmp_path / "folders.json")
    spec = importlib.util.spec_from_file_location("pack_training_crops",
                                                  Path(__file__).resolve().parents[2] / "scripts" / "pack_training_crops.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    pack = tmp_path / "att.npz"
    assert script.main(["--config", str(tmp_path / "folders.json"), "--out", str(pack), "--format", "png"]) == 0

    def run(c: TrainConfig) -> tuple[list[float], dict]:
        events = []
        result = run_to_completion(train(c), events.append)
        return [e.metrics["loss"] for e in events if e.stage == "train"], result.card

    folder_losses, folder_card = run(folders)
    pack_losses, pack_card = run(config([DatasetSpec(path=str(pack))], "pack"))
    assert len(pack_losses) == 2 * 3 and pack_losses == folder_losses           # 7 training people x 5: 3 steps/epoch
    assert pack_card["train_identities"] == folder_card["train_identities"] == 7
    assert pack_card["metrics"]["validation"]["accuracy"] == folder_card["metrics"]["validation"]["accuracy"]
    entry = pack_card["data"][0]
    assert entry["layout"] == "pack" and entry["name"] == "att" and entry["packed"][0]["name"] == "att_faces"
    assert entry["packed"][0]["identity_filter"] == "s1-s10"


def test_the_trainer_writes_the_int8_network_of_its_model(att: Path, mediapipe_models: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    config = tiny_config(att, tmp_path, epochs=2, int8_calibration=24)
    events: list[Progress] = []
    result = run_to_completion(train(config), events.append)
    entry = read_card(result.model_dir)["int8"]
    assert entry["calibration"]["data"] == "the training crops (24 drawn, seed 0)" and entry["calibration"]["crops"] == 24
    assert entry["agreement_with_fp32"]["crops"] == 16            # the 40 training crops less the 24 calibrated on
    assert any("int8 network written" in (e.message or "") for e in events if e.stage == "export")
    assert Embedder.load(result.model_dir).engine == "onnxruntime-int8"

    import faceapp.embedding.int8 as int8

    def refuses(*args, **kwargs):
        raise IncompatibleError("agrees with fp32 only to a mean cosine of 0.5")

    monkeypatch.setattr(int8, "quantize_folder", refuses)
    events.clear()
    again = run_to_completion(train(tiny_config(att, tmp_path / "again", epochs=1, int8_calibration=24)), events.append)
    assert "int8" not in read_card(again.model_dir) and Embedder.load(again.model_dir).engine == "onnxruntime"
    assert any("int8 network not written (agrees with fp32 only" in (e.message or "") for e in events)
    with pytest.raises(DatasetError, match="int8_calibration must be 0 .* or at least 16"):
        tiny_config(att, tmp_path, int8_calibration=5).validate()
