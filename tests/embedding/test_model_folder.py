"""Model folders: save/load round trip, cards, sha256, preprocessing, and every broken-folder error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from faceapp.core.errors import ModelAssetError
from faceapp.embedding.model_folder import (CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, ModelConfig, load_model, preprocess,
                                            read_card, save_model, update_card, weights_sha256)
from faceapp.nn.backbones import create_backbone, fuse_for_inference


def test_round_trip_rebuilds_the_same_network(make_folder) -> None:
    folder, net, config = make_folder(backbone="mobilefacenet", dim=64, width=0.5)
    assert {p.name for p in folder.iterdir()} == {WEIGHTS_FILE, CONFIG_FILE, CARD_FILE}, "no temp files left"
    loaded, cfg, card = load_model(folder)
    assert cfg == config
    assert cfg.backbone_kwargs == {"width": 0.5}
    assert not loaded.training
    x = torch.randn(2, 3, 112, 112)
    with torch.inference_mode():
        assert torch.equal(loaded(x), net.eval()(x))
    assert card["trained"] is True and card["loss"] == "arcface" and card["metrics"] == {"cfp_ff": 0.5}
    assert card["backbone"] == "mobilefacenet" and card["embedding_dim"] == 64
    assert card["weights_sha256"] == weights_sha256(folder)
    assert card["params"] == sum(p.numel() for p in net.parameters())
    assert "T" in card["created"]


def test_config_json_is_plain_and_complete(make_folder) -> None:
    folder, _, _ = make_folder(dim=16)
    data = json.loads((folder / CONFIG_FILE).read_text())
    assert data == {"format": "faceapp-model/1", "name": "m", "backbone": "tiny", "embedding_dim": 16,
                    "input_size": 112, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                    "backbone_kwargs": {"width": 16}}, "the backbone's defaults are recorded"


def test_sha256_changes_with_the_weights(make_folder) -> None:
    a, _, _ = make_folder(seed=0)
    b, _, _ = make_folder(seed=1)
    assert len(weights_sha256(a)) == 64
    assert weights_sha256(a) != weights_sha256(b)


def test_untrained_flag_and_card_updates(make_folder) -> None:
    folder, _, _ = make_folder(card={"trained": False})
    assert read_card(folder)["trained"] is False
    update_card(folder, metrics={"cfp_ff": 0.9})
    update_card(folder, metrics={"cfp_fp": 0.7}, epochs=3)
    card = read_card(folder)
    assert card["metrics"] == {"cfp_ff": 0.9, "cfp_fp": 0.7} and card["epochs"] == 3
    (folder / CARD_FILE).unlink()
    assert read_card(folder) == {}


def test_save_refuses_a_folded_inference_copy(tmp_path: Path) -> None:
    net = create_backbone("tiny", embedding_dim=8)
    config = ModelConfig(name="x", backbone="tiny", embedding_dim=8)
    with pytest.raises(ModelAssetError, match="does not match config"):
        save_model(tmp_path / "x", fuse_for_inference(net), config, {})


# ------------------------------------------------------------------------------------------ broken folders
def test_missing_folder_or_a_file_instead(make_folder, tmp_path: Path) -> None:
    with pytest.raises(ModelAssetError, match="model folder not found"):
        load_model(tmp_path / "nope")
    folder, _, _ = make_folder()
    with pytest.raises(ModelAssetError, match="is a file; expected a model folder"):
        load_model(folder / WEIGHTS_FILE)


def test_truncated_weights(make_folder) -> None:
    folder, _, _ = make_folder()
    data = (folder / WEIGHTS_FILE).read_bytes()
    (folder / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelAssetError, match=r"weights\.pt: not a readable PyTorch weights file") as info:
        load_model(folder)
    assert info.value.path == str(folder / WEIGHTS_FILE)


def test_garbage_weights(make_folder) -> None:
    folder, _, _ = make_folder()
    (folder / WEIGHTS_FILE).write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ModelAssetError, match=r"weights\.pt: not a readable PyTorch weights file"):
        load_model(folder)


def test_empty_and_missing_weights(make_folder) -> None:
    folder, _, _ = make_folder()
    (folder / WEIGHTS_FILE).write_bytes(b"")
    with pytest.raises(ModelAssetError, match=r"weights\.pt: weights file is empty"):
        load_model(folder)
    (folder / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelAssetError, match=r"weights\.pt: weights file missing"):
        load_model(folder)


def test_weights_that_are_not_a_state_dict(make_folder) -> None:
    folder, _, _ = make_folder()
    torch.save([1, 2, 3], folder / WEIGHTS_FILE)
    with pytest.raises(ModelAssetError, match="expected a state_dict"):
        load_model(folder)


def test_state_dict_of_another_architecture(make_folder) -> None:
    folder, _, _ = make_folder(backbone="tiny", dim=32)
    other = create_backbone("resnet9", embedding_dim=32, width=0.25)
    torch.save(other.state_dict(), folder / WEIGHTS_FILE)
    with pytest.raises(ModelAssetError, match=r"weights\.pt: weights do not match the architecture.*'tiny'"):
        load_model(folder)


def test_state_dict_of_another_embedding_size(make_folder) -> None:
    folder, _, _ = make_folder(backbone="tiny", dim=32)
    torch.save(create_backbone("tiny", embedding_dim=64).state_dict(), folder / WEIGHTS_FILE)
    with pytest.raises(ModelAssetError, match="size mismatch"):
        load_model(folder)


def test_config_naming_an_unknown_backbone(make_folder) -> None:
    folder, _, _ = make_folder()
    data = json.loads((folder / CONFIG_FILE).read_text())
    data["backbone"] = "vgg-face-9000"
    (folder / CONFIG_FILE).write_text(json.dumps(data))
    with pytest.raises(ModelAssetError, match=r"config\.json: unknown backbone 'vgg-face-9000'; known backbones: .*mobilefacenet"):
        load_model(folder)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("embedding_dim"), "missing field 'embedding_dim'"),
    (lambda d: d.update(embedding_dim="128"), "'embedding_dim' must be a positive integer"),
    (lambda d: d.update(mean=[0.5, 0.5]), "'mean' must be a list of 3 numbers"),
    (lambda d: d.update(std=[0.5, 0.0, 0.5]), "'std' must be positive"),
    (lambda d: d.update(input_size=100), "cannot build the network.*input_size"),
    (lambda d: d.update(backbone_kwargs={"depth": 3}), "cannot build the network.*depth"),
])
def test_bad_config_fields(make_folder, edit, message: str) -> None:
    folder, _, _ = make_folder(backbone="resnet9", width=0.25)
    data = json.loads((folder / CONFIG_FILE).read_text())
    edit(data)
    (folder / CONFIG_FILE).write_text(json.dumps(data))
    with pytest.raises(ModelAssetError, match=message) as info:
        load_model(folder)
    assert CONFIG_FILE in str(info.value)


def test_config_not_json_and_missing(make_folder) -> None:
    folder, _, _ = make_folder()
    (folder / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ModelAssetError, match=r"config\.json: not valid JSON"):
        load_model(folder)
    (folder / CONFIG_FILE).unlink()
    with pytest.raises(ModelAssetError, match=r"config\.json: file missing"):
        load_model(folder)


def test_corrupt_card(make_folder) -> None:
    folder, _, _ = make_folder()
    (folder / CARD_FILE).write_text("[1, 2")
    with pytest.raises(ModelAssetError, match=r"model_card\.json: not valid JSON"):
        load_model(folder)


# --------------------------------------------------------------------------------------------- preprocess
def test_preprocess_converts_bgr_to_normalised_rgb() -> None:
    config = ModelConfig(name="p", backbone="tiny", embedding_dim=8)
    crop = np.zeros((112, 112, 3), np.uint8)
    crop[..., 0] = 255            # pure blue in BGR
    x = preprocess(crop, config)
    assert x.shape == (1, 3, 112, 112) and x.dtype == torch.float32
    assert torch.all(x[0, 0] == -1.0) and torch.all(x[0, 1] == -1.0) and torch.all(x[0, 2] == 1.0)


def test_preprocess_batches_grey_and_resizes(real_crops: np.ndarray) -> None:
    config = ModelConfig(name="p", backbone="tiny", embedding_dim=8, input_size=96)
    assert preprocess(real_crops, config).shape == (8, 3, 96, 96)
    assert preprocess(list(real_crops[:3]), config).shape == (3, 3, 96, 96)
    grey = real_crops[0, :, :, 1]
    g = preprocess(grey, config)
    assert g.shape == (1, 3, 96, 96) and torch.equal(g[0, 0], g[0, 2])
    assert preprocess([], config).shape == (0, 3, 96, 96)
    nhwc = preprocess(real_crops, config, channels_last=True)
    assert nhwc.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(nhwc, preprocess(real_crops, config)) and preprocess(real_crops, config).is_contiguous()
    floats = real_crops[:2].astype(np.float64)
    same_size = ModelConfig(name="p", backbone="tiny", embedding_dim=8)       # no resize: uint8 rounding aside
    assert torch.allclose(preprocess(floats, same_size), preprocess(real_crops[:2], same_size), atol=1e-6)
    assert np.array_equal(floats, real_crops[:2]), "the caller's crops are not modified"
    with pytest.raises(ValueError, match="face crop 1"):
        preprocess([real_crops[0], np.zeros((112, 112, 2), np.uint8)], config)
