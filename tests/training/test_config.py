"""Training config: JSON/TOML round trip and errors that name the bad setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceapp.core.errors import DatasetError
from faceapp.data.datasets import DatasetSpec
from faceapp.training.config import TrainConfig, load_config, save_config


def test_json_round_trip(tmp_path: Path) -> None:
    config = TrainConfig(data=[DatasetSpec(path="/x", identities="001-400")], loss="cosface", epochs=3)
    config.validation.folds = [9, 10]
    back = load_config(save_config(config, tmp_path / "c.json"))
    assert back == config and isinstance(back.data[0], DatasetSpec)


def test_toml(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('loss = "triplet"\nlr = 1\n[[data]]\npath = "a"\n[augment]\nflip = 0.0\n')
    config = load_config(file)
    assert config.loss == "triplet" and config.lr == 1.0 and config.data[0].path == "a" and config.augment.flip == 0.0


@pytest.mark.parametrize("text, message", [
    ('{"epoch": 3}', "unknown setting.*epoch"),
    ('{"epochs": "3"}', "c.json.epochs: expected an integer"),
    ('{"augment": {"flip": true}}', "augment.flip: expected a number"),
    ('{"optimizer": "adam"}', "optimizer = 'adam'"),
    ('{"epochs": 3,', "not valid JSON"),
])
def test_errors_name_the_setting(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "c.json"
    file.write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_config(file)


def test_old_amp_setting_maps_to_precision(tmp_path: Path) -> None:
    """``amp`` (before ``precision``) still loads: true = mixed precision on CUDA ("auto"), false = float32."""
    file = tmp_path / "old.toml"
    file.write_text('amp = false\n[[data]]\npath = "a"\n')
    assert load_config(file).precision == "fp32"
    assert TrainConfig.from_dict({"amp": True}).precision == "auto"
    assert "amp" not in TrainConfig().to_dict()
    with pytest.raises(DatasetError, match="amp.*precision"):
        TrainConfig.from_dict({"amp": True, "precision": "bf16"})
    with pytest.raises(DatasetError, match="amp: expected true or false"):
        TrainConfig.from_dict({"amp": "yes"})
    for bad, message in (({"precision": "half"}, "precision = 'half'"), ({"data_on_device": "gpu"}, "data_on_device"),
                         ({"time_budget_s": -1}, "time_budget_s"), ({"data": [{"path": "a", "layout": "zip"}]}, "layout")):
        with pytest.raises(DatasetError, match=message):
            TrainConfig.from_dict(bad).validate()
    assert TrainConfig.from_dict({"data": [{"path": "p.npz", "layout": "pack"}]}).validate().data[0].layout == "pack"


REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_recipes_load_and_state_their_lineage() -> None:
    """configs/default_model.toml starts from the MS1M weights with the backbone they fit; the clean model's
    two stages use no MS1M weights: stage 1 starts from random numbers, stage 2 from stage 1 with dlib."""
    from faceapp.embedding.pretrained import PRETRAINED, start_architecture

    default = load_config(REPO / "configs" / "default_model.toml")
    arch = start_architecture(default.init)
    assert default.init in PRETRAINED and PRETRAINED[default.init].lineage["ms1m_ancestry"] is True
    assert (default.backbone, default.embedding_dim, default.input_size) == (arch.backbone, arch.embedding_dim,
                                                                             arch.input_size)
    assert default.int8_calibration == 256                     # the recipe writes the int8 engine too
    base = load_config(REPO / "configs" / "clean_base.toml")
    clean = load_config(REPO / "configs" / "clean_model.toml")
    assert base.int8_calibration == clean.int8_calibration == 0   # PReLU: int8 is no faster there
    assert base.init == "" and base.teacher == "" and base.out == clean.init
    assert clean.teacher == "dlib" and clean.init not in PRETRAINED and clean.backbone == base.backbone
    for recipe in (default, base, clean):
        for spec in recipe.data:      # never CFP's test people (folds 9-10 = 401-500)
            assert "cfp" not in spec.path or spec.identities == "001-400"
