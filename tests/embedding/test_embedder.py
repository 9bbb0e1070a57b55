"""The Embedder on real face crops: unit norm, fixed dimension, flip-TTA, model ids, loading rules."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from faceapp.core.errors import IncompatibleError, ModelAssetError
from faceapp.embedding import Embedder, default_model_dir, resolve_device
from faceapp.embedding.embedder import UNTRAINED_BACKBONE
from faceapp.embedding.model_folder import CARD_FILE, WEIGHTS_FILE, preprocess


@pytest.fixture(scope="module")
def untrained() -> Embedder:
    return Embedder.untrained(device="cpu")


def test_unit_norm_and_fixed_dimension(untrained: Embedder, real_crops: np.ndarray) -> None:
    v = untrained.embed(real_crops)
    assert v.shape == (8, untrained.dim) == (8, 128)
    assert v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert untrained.embed(real_crops[0]).shape == (1, 128), "a single crop is accepted"
    assert untrained.embed_one(real_crops[0]).shape == (128,)
    assert untrained.embed([]).shape == (0, 128)
    sims = v @ v.T
    assert np.all(sims[~np.eye(8, dtype=bool)] < 0.99999), "different faces must give different vectors"


def test_untrained_fallback_is_labelled_and_deterministic(real_crops: np.ndarray) -> None:
    a = Embedder.untrained(device="cpu")
    b = Embedder.untrained(device="cpu")
    c = Embedder.untrained(device="cpu", seed=1)
    assert a.trained is False and a.info()["trained"] is False
    assert a.name == f"untrained-{UNTRAINED_BACKBONE}" and a.config.backbone == UNTRAINED_BACKBONE
    assert a.model_id == b.model_id != c.model_id
    assert a.model_id.startswith(f"untrained-{UNTRAINED_BACKBONE}@") and len(a.model_id.split("@")[1]) == 12
    assert np.array_equal(a.embed(real_crops), b.embed(real_crops))
    assert "UNTRAINED" in repr(a)


def test_flip_tta_changes_nothing_for_a_symmetric_face(untrained: Embedder, real_crops: np.ndarray) -> None:
    half = real_crops[0][:, :56]
    symmetric = np.ascontiguousarray(np.concatenate([half, half[:, ::-1]], axis=1))
    assert np.array_equal(symmetric, symmetric[:, ::-1])
    tta = Embedder(untrained.net, untrained.config, untrained.card, device="cpu", flip_tta=True, optimize=False)
    plain = untrained.embed(symmetric)
    assert np.allclose(tta.embed(symmetric), plain, atol=1e-5)
    # ...while for ordinary faces it does change the vector (so the test above is not vacuous)
    assert not np.allclose(tta.embed(real_crops[1]), untrained.embed(real_crops[1]), atol=1e-3)


def test_flip_tta_is_sum_of_raw_embeddings(make_folder, real_crops: np.ndarray) -> None:
    folder, net, config = make_folder(backbone="tiny", dim=32)
    emb = Embedder.load(folder, device="cpu", flip_tta=True)
    x = preprocess(real_crops[:3], config)
    with torch.inference_mode():
        raw = net.eval()(x) + net(x.flip(3))
    expected = torch.nn.functional.normalize(raw, dim=1).numpy()
    assert np.allclose(emb.embed(real_crops[:3]), expected, atol=1e-5)


def test_saved_folder_gives_the_same_embeddings_as_the_net(make_folder, real_crops: np.ndarray) -> None:
    folder, net, config = make_folder(backbone="resnet9", dim=64, width=0.25)
    loaded = Embedder.load(folder, device="cpu")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    in_memory = Embedder(net, config, {"trained": True}, device="cpu")
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items()), "caller's net untouched"
    assert np.allclose(loaded.embed(real_crops), in_memory.embed(real_crops), atol=1e-6)
    unfused = Embedder.load(folder, device="cpu", optimize=False)
    assert np.allclose(loaded.embed(real_crops), unfused.embed(real_crops), atol=1e-4)
    assert loaded.trained is True and loaded.dim == 64 and loaded.folder == folder
    info = loaded.info()
    assert info["model_id"] == loaded.model_id and info["metrics"] == {"cfp_ff": 0.5}


def test_model_id_follows_the_weights(make_folder) -> None:
    folder, net, config = make_folder(name="demo")
    first = Embedder.load(folder, device="cpu")
    from faceapp.embedding.model_folder import weights_sha256
    assert first.model_id == f"demo@{weights_sha256(folder)[:12]}"
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01)
    torch.save(net.state_dict(), folder / WEIGHTS_FILE)
    second = Embedder.load(folder, device="cpu")
    assert second.name == first.name and second.model_id != first.model_id


def test_missing_card_means_untrained(make_folder) -> None:
    folder, _, _ = make_folder()
    (folder / CARD_FILE).unlink()
    assert Embedder.load(folder, device="cpu").trained is False


def test_batching_does_not_change_results(untrained: Embedder, real_crops: np.ndarray) -> None:
    whole = untrained.embed(real_crops, batch_size=64)
    assert np.allclose(untrained.embed(real_crops, batch_size=3), whole, atol=1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        untrained.embed(real_crops, batch_size=0)


def test_default_resolution(make_folder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder, _, _ = make_folder(name="from-env")
    monkeypatch.setenv("FACEAPP_EMBED_MODEL", str(folder))
    assert default_model_dir() == folder
    assert Embedder.load(device="cpu").name == "from-env"
    monkeypatch.setenv("FACEAPP_EMBED_MODEL", str(tmp_path / "missing"))
    with pytest.raises(ModelAssetError, match="model folder not found"):
        Embedder.load(device="cpu")
    monkeypatch.setattr("faceapp.embedding.embedder.bundled_models_dir", lambda: tmp_path / "no-models")
    monkeypatch.delenv("FACEAPP_EMBED_MODEL")
    fallback = Embedder.load(device="cpu")
    assert fallback.trained is False and fallback.name.startswith("untrained-")
    monkeypatch.setattr("faceapp.embedding.embedder.bundled_models_dir", lambda: folder.parent)
    (folder.parent / "default").symlink_to(folder, target_is_directory=True)
    assert Embedder.load(device="cpu").name == "from-env"


def test_device_resolution() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(IncompatibleError, match="not a torch device"):
        resolve_device("abacus")
    if not torch.cuda.is_available():
        with pytest.raises(IncompatibleError, match="CUDA is not available"):
            Embedder.untrained(backbone="tiny", device="cuda")


def test_concurrent_calls_from_threads(real_crops: np.ndarray) -> None:
    emb = Embedder.untrained(backbone="tiny", device="cpu")
    expected = emb.embed(real_crops)
    results: list[np.ndarray] = []

    def work() -> None:
        for _ in range(5):
            results.append(emb.embed(real_crops))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 15 and all(np.allclose(r, expected, atol=1e-6) for r in results)
