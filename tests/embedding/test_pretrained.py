"""Pretrained starting points: the MS1M MobileFaceNet loads strictly into ``mobilefacenet_relu6`` and gives the
ONNX file's embeddings on real MediaPipe-aligned crops; wrong files and structures are refused by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceapp.core.errors import IncompatibleError, ModelAssetError
from faceapp.core.paths import teachers_dirs
from faceapp.embedding.model_folder import ModelConfig, preprocess, save_model
from faceapp.embedding.pretrained import (PRETRAINED, find_weight_file, load_strict, resolve_start,
                                          start_architecture)
from faceapp.nn.backbones import create_backbone, fuse_for_inference
from faceapp.vision.pipeline import FacePipeline

import onnxruntime as ort  # noqa: E402  (the test extra installs it: this test must run, not skip)


@pytest.fixture(scope="module")
def aligned_cfp(cfp: Path, mediapipe_models: Path) -> np.ndarray:
    """Six real CFP frontal photos (three people, two each) aligned by the app's own pipeline."""
    images = [cfp / "Data" / "Images" / f"{p:03d}" / kind / f"{n:02d}.jpg"
              for p in (1, 2, 3) for kind, n in (("frontal", 1), ("frontal", 2))]
    crops = []
    with FacePipeline("image", model_dir=mediapipe_models, allow_download=False) as pipe:
        for path in images:
            faces = pipe.process(cv2.imread(str(path)))
            assert faces, f"no face in {path}"
            crops.append(faces[0].image)
    return np.stack(crops)


def test_ms1m_weights_load_strictly_and_match_the_onnx_export(aligned_cfp: np.ndarray) -> None:
    start = resolve_start("mobilefacenet_ms1m")
    assert start.config.backbone == "mobilefacenet_relu6" and start.config.mean == (0.485, 0.456, 0.406)
    net = start.build().eval()
    onnx_path = find_weight_file("mobilefacenet_ms1m.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = preprocess(aligned_cfp, start.config)
    with torch.no_grad():
        ours = net(x).numpy()
        fused = fuse_for_inference(net)(x).numpy()
    theirs = np.concatenate([session.run(None, {session.get_inputs()[0].name: x[i:i + 1].numpy()})[0]
                             for i in range(len(x))])
    assert ours.shape == theirs.shape == (6, 128)
    assert np.abs(ours - theirs).max() < 1e-4            # ~5e-6 measured; same weights, same graph
    assert np.abs(ours - fused).max() < 1e-4              # BN folding (Embedder's copy) keeps the function
    unit = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    sims = unit @ unit.T
    same = [sims[0, 1], sims[2, 3], sims[4, 5]]
    other = [sims[0, 2], sims[0, 4], sims[2, 4], sims[1, 3]]
    assert min(same) > max(other)                         # one person's two photos beat strangers


def test_a_file_with_another_sha256_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = find_weight_file("mobilefacenet_ms1m.pt")
    bad = tmp_path / "mobilefacenet_ms1m.pt"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setenv("FACEAPP_TEACHERS_DIR", str(tmp_path))
    assert teachers_dirs()[0] == tmp_path
    with pytest.raises(ModelAssetError, match=r"mobilefacenet_ms1m\.pt: SHA-256 .* not the published"):
        resolve_start("mobilefacenet_ms1m")


def test_a_missing_file_names_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("faceapp.embedding.pretrained.teachers_dirs", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ModelAssetError, match=r"not found; looked in .*a, .*b.*FACEAPP_TEACHERS_DIR"):
        resolve_start("mobilefacenet_ms1m")


def test_weights_of_another_structure_are_refused_with_the_keys() -> None:
    state = resolve_start("mobilefacenet_ms1m").state
    other = create_backbone("mobilefacenet", embedding_dim=128)
    with pytest.raises(IncompatibleError, match=r"ms1m does not fit backbone 'mobilefacenet'.*(Missing|Unexpected)"):
        load_strict(other, state, what="ms1m", backbone="mobilefacenet")


def test_unknown_start_is_neither_folder_nor_name(tmp_path: Path) -> None:
    with pytest.raises(ModelAssetError, match="neither a model folder .* nor a registered pretrained source"):
        start_architecture(str(tmp_path / "nothing"))


def test_a_model_folder_passes_its_lineage_on(tmp_path: Path) -> None:
    start = resolve_start("mobilefacenet_ms1m")
    folder = save_model(tmp_path / "child", start.build(), ModelConfig(**{**vars(start.config), "name": "child"}),
                        {"lineage": {"start": start.lineage, "ms1m_ancestry": True}, "data": [{"name": "att"}]})
    child = resolve_start(str(folder))
    assert child.lineage["kind"] == "model_folder" and child.lineage["ms1m_ancestry"] is True
    assert child.lineage["lineage"]["start"]["sha256"] == PRETRAINED["mobilefacenet_ms1m"].sha256
    assert start_architecture(str(folder)).backbone == "mobilefacenet_relu6"
    net = child.build()
    for key, value in start.state.items():
        assert torch.equal(net.state_dict()[key], value)
    clean = save_model(tmp_path / "clean", create_backbone("tiny", embedding_dim=16),
                       ModelConfig(name="clean", backbone="tiny", embedding_dim=16), {"data": [{"name": "att"}]})
    assert resolve_start(str(clean)).lineage["ms1m_ancestry"] is False


def test_copying_the_teachers_folder_elsewhere_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = find_weight_file("mobilefacenet_ms1m.pt")
    shutil.copy(src, tmp_path / src.name)
    monkeypatch.setenv("FACEAPP_TEACHERS_DIR", str(tmp_path))
    assert find_weight_file("mobilefacenet_ms1m.pt") == tmp_path / src.name
    assert resolve_start("mobilefacenet_ms1m").lineage["file"] == src.name
