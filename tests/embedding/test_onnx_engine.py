"""The onnxruntime engine of the Embedder: same embeddings as torch on real crops, one cached export per weights,
a broken cache file replaced, a disagreeing export refused, the engine choice validated."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from faceapp.core.errors import IncompatibleError
from faceapp.core.paths import cache_dir
from faceapp.embedding import onnx_engine
from faceapp.embedding.embedder import Embedder
from faceapp.embedding.onnx_engine import requested_engine, resolve_engine

REPO = Path(__file__).resolve().parents[2]


def _exports() -> list[Path]:
    return sorted((cache_dir() / "onnx").glob("*.onnx"))


@pytest.mark.parametrize("flip_tta", [False, True])
def test_shipped_model_gives_torch_embeddings_through_onnxruntime(real_crops: np.ndarray, flip_tta: bool) -> None:
    fast = Embedder.load(REPO / "models" / "default", flip_tta=flip_tta, engine="onnxruntime")   # fp32 (auto: int8)
    eager = Embedder.load(REPO / "models" / "default", flip_tta=flip_tta, engine="torch")
    assert (fast.engine, eager.engine) == ("onnxruntime", "torch")
    assert fast.info()["engine"] == "onnxruntime"
    a, b = fast.embed(real_crops), eager.embed(real_crops)
    assert a.shape == b.shape == (len(real_crops), 128)
    assert np.abs(a - b).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    # batch 1 and the batched call agree too (dynamic batch dimension)
    assert np.abs(fast.embed_one(real_crops[3]) - a[3]).max() < 1e-5


def test_export_is_cached_once_per_weights_and_a_broken_file_is_replaced(make_folder, real_crops: np.ndarray) -> None:
    folder, _, _ = make_folder(name="cached", backbone="tiny", dim=32, seed=3)
    before = set(_exports())
    first = Embedder.load(folder)
    new = set(_exports()) - before
    assert first.engine == "onnxruntime" and len(new) == 1
    export = new.pop()
    stamp = export.stat().st_mtime_ns
    Embedder.load(folder)
    assert export.stat().st_mtime_ns == stamp                   # reused, not exported again
    export.write_bytes(b"not an onnx file")                     # truncated / foreign cache content
    again = Embedder.load(folder)
    assert again.engine == "onnxruntime" and export.stat().st_size > 1000
    np.testing.assert_allclose(again.embed(real_crops), first.embed(real_crops), atol=1e-5)


def test_an_export_that_disagrees_with_torch_is_never_used(make_folder, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    folder, _, _ = make_folder(name="strict", backbone="tiny", dim=32, seed=4)
    monkeypatch.setattr(onnx_engine, "PROBE_TOLERANCE", -1.0)  # every comparison now counts as a mismatch
    with caplog.at_level(logging.WARNING, logger="faceapp.embedding.onnx_engine"):
        fallback = Embedder.load(folder)
    assert fallback.engine == "torch"
    assert "differs from torch" in caplog.text
    with pytest.raises(IncompatibleError, match="onnxruntime engine unavailable for strict"):
        Embedder.load(folder, engine="onnxruntime")


def test_engine_choice_is_validated_and_read_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                                  make_folder) -> None:
    assert resolve_engine("auto", "cpu") == "onnxruntime"
    assert resolve_engine("auto", "cpu", "mobilefacenet") == "torch"          # PReLU: slower in onnxruntime
    assert resolve_engine("onnxruntime", "cpu", "mobilefacenet") == "onnxruntime"
    assert Embedder.load(REPO / "models" / "clean").engine == "torch"
    assert resolve_engine("auto", "cuda") == "torch"
    with pytest.raises(IncompatibleError, match="CPU only"):
        resolve_engine("onnxruntime", "cuda")
    with pytest.raises(IncompatibleError, match="'tensorrt' is not one of auto, torch, onnxruntime"):
        requested_engine("tensorrt")
    folder, _, _ = make_folder(name="env", backbone="tiny", dim=32, seed=5)
    monkeypatch.setenv(onnx_engine.ENV_ENGINE, "torch")
    assert Embedder.load(folder).engine == "torch"
    assert Embedder.load(folder, optimize=False).engine == "torch"
    monkeypatch.setenv(onnx_engine.ENV_ENGINE, "bogus")
    with pytest.raises(IncompatibleError, match="FACEAPP_EMBED_ENGINE"):
        Embedder.load(folder)
