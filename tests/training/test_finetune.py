"""Fine-tuning from a starting point on real AT&T crops: the head starts at the class centroids, head-only
epochs leave the backbone (weights and BN statistics) untouched, the backbone learns at its multiplier, the
card records the lineage, and a starting point of another structure is refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from faceapp.core.errors import IncompatibleError, ModelAssetError
from faceapp.core.progress import Progress, run_to_completion
from faceapp.data import DatasetSpec
from faceapp.embedding.model_folder import load_model, read_weights
from faceapp.embedding.pretrained import resolve_start
from faceapp.nn.losses import create_loss
from faceapp.training import AugmentConfig, TrainConfig, train
from faceapp.training.finetune import class_centroids, init_head_from_centroids
from faceapp.training.loop import _Run


def ms1m_config(att: Path, tmp: Path, **overrides) -> TrainConfig:
    """AT&T s1-s6 x 4 images from the MS1M start, one batch per epoch, no augmentation, no validation."""
    config = TrainConfig(
        data=[DatasetSpec(path=str(att), identities="s1-s6", max_per_identity=4)], name="ft", init="mobilefacenet_ms1m",
        backbone="mobilefacenet_relu6", epochs=2, batch_size=24, lr=0.05, warmup_epochs=0, schedule="constant",
        log_every=1, augment=AugmentConfig.off(), run_dir=str(tmp / "run"), out=str(tmp / "model"), threads=1)
    config.validation.holdout = 0.0
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def test_centroids_are_normalised_class_means() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(12, 8)).astype(np.float32)
    labels = np.repeat(np.arange(3), 4)
    centroids = run_to_completion(class_centroids(lambda crops: crops, lambda idx: emb[idx], labels, 3, batch_size=5))
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    for c in range(3):
        mean = unit[labels == c].mean(0)
        assert np.allclose(centroids[c], mean / np.linalg.norm(mean), atol=1e-6)
    loss = create_loss("arcface", embedding_dim=8, num_classes=3)
    assert init_head_from_centroids(loss, centroids)
    w = loss.head.weight.detach().numpy()
    assert np.allclose(w / np.linalg.norm(w, axis=1, keepdims=True), centroids, atol=1e-5)
    center = create_loss("center", embedding_dim=8, num_classes=3)
    assert init_head_from_centroids(center, centroids) and np.allclose(center.centers.numpy(), centroids)
    assert not init_head_from_centroids(create_loss("triplet", embedding_dim=8, num_classes=3), centroids)


def test_centroid_head_starts_where_the_features_are(att: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    """From the MS1M start the centroid head classifies the training faces at step 1; a random head does not."""
    def first_step(head_init: str) -> dict:
        events: list[Progress] = []
        run_to_completion(train(ms1m_config(att, tmp_path / head_init, head_init=head_init, epochs=1, max_steps=1,
                                            freeze_epochs=1.0)), events.append)
        return [e.metrics for e in events if e.stage == "train"][0]

    centroid, random = first_step("centroids"), first_step("random")
    assert centroid["train_acc"] >= 0.9, centroid
    assert random["train_acc"] <= 0.5, random
    assert centroid["loss"] < 0.5 * random["loss"]


def test_head_only_epochs_keep_the_backbone_and_the_multiplier_applies(att: Path, mediapipe_models: Path,
                                                                       tmp_path: Path) -> None:
    start = resolve_start("mobilefacenet_ms1m").state
    config = ms1m_config(att, tmp_path / "frozen", epochs=1, freeze_epochs=1.0)
    result = run_to_completion(train(config))
    frozen = read_weights(result.model_dir)
    assert all(torch.equal(frozen[k], v) for k, v in start.items()), "a frozen backbone changed (weights or BN stats)"
    assert result.card["training"]["head_init"] == "centroids" and result.card["training"]["freeze_epochs"] == 1.0

    run = _Run(ms1m_config(att, tmp_path / "mult", backbone_lr_mult=0.1), None)
    run_to_completion(run.prepare_data())
    run.build()
    mults = sorted({g["lr_mult"] for g in run.optimizer.param_groups})
    assert mults == [0.1, 1.0]
    run.train_step(run.sampler.batches(0)[0])
    backbone_ids = {id(p) for p in run.net.parameters()}
    for group in run.optimizer.param_groups:
        expected = 0.05 * (0.1 if id(group["params"][0]) in backbone_ids else 1.0)
        assert group["lr"] == pytest.approx(expected)
    after = run.net.state_dict()
    assert any(not torch.equal(after[k].cpu(), start[k]) for k in start if k.endswith("weight"))


def test_fine_tuned_card_states_the_lineage(att: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    result = run_to_completion(train(ms1m_config(att, tmp_path, epochs=1)))
    lineage = json.loads((result.model_dir / "model_card.json").read_text())["lineage"]
    assert lineage["start"]["name"] == "mobilefacenet_ms1m" and lineage["start"]["licence"] == "Apache-2.0"
    assert lineage["start"]["sha256"].startswith("90a00ba1") and "MS-Celeb-1M" in lineage["start"]["training_data"]
    assert lineage["ms1m_ancestry"] is True and "not a clean held-out number" in lineage["benchmark_caveat"]
    assert lineage["data"] == ["att_faces"]
    net, config, _ = load_model(result.model_dir)
    assert config.backbone == "mobilefacenet_relu6" and config.std == (0.229, 0.224, 0.225)
    # a fine-tune of the fine-tune still names the original start
    again = run_to_completion(train(ms1m_config(att, tmp_path / "again", epochs=1, init=str(result.model_dir))))
    assert again.card["lineage"]["ms1m_ancestry"] is True
    assert again.card["lineage"]["start"]["lineage"]["start"]["name"] == "mobilefacenet_ms1m"


def test_a_start_of_another_structure_is_refused_before_any_work(att: Path, tmp_path: Path) -> None:
    fresh = DatasetSpec(path=str(att), identities="s31-s33")        # never aligned: an alignment event would show
    events: list[Progress] = []
    config = ms1m_config(att, tmp_path, data=[fresh], backbone="mobilefacenet")
    with pytest.raises(IncompatibleError, match=r"mobilefacenet_ms1m: a mobilefacenet_relu6 network .* --backbone mobilefacenet_relu6"):
        for event in train(config):
            events.append(event)
    assert events == [] and not (tmp_path / "model").exists() and not (tmp_path / "run").exists()
    with pytest.raises(IncompatibleError, match="64-d"):
        run_to_completion(train(ms1m_config(att, tmp_path, data=[fresh], embedding_dim=64)))
    with pytest.raises(ModelAssetError, match="neither a model folder"):
        run_to_completion(train(ms1m_config(att, tmp_path, data=[fresh], init=str(tmp_path / "missing"))))
    assert not (tmp_path / "model").exists()
