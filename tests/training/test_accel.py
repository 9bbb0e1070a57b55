"""Precision and data placement (faceapp.training.accel): the choices, decided without a GPU, and the loop's
reduced-precision and data-on-device paths run on the CPU device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faceapp.core.errors import DatasetError
from faceapp.core.progress import Progress, run_to_completion
from faceapp.data import DatasetSpec
from faceapp.training import AugmentConfig, TrainConfig, accel, train


def test_precision_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    assert accel.resolve_precision("auto", "cpu") == "fp32"
    assert accel.resolve_precision("bf16", "cpu") == "bf16" and accel.resolve_precision("fp16", "cuda") == "fp16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))      # H100/H200
    assert accel.resolve_precision("auto", "cuda") == "bf16" and accel.resolve_precision("auto", "cuda:1") == "bf16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))      # V100: no bf16
    assert accel.resolve_precision("auto", "cuda") == "fp16"
    with pytest.raises(DatasetError, match="precision = 'half'"):
        accel.resolve_precision("half", "cpu")
    assert [accel.needs_grad_scaler(p) for p in ("fp32", "fp16", "bf16")] == [False, True, False]
    assert accel.autocast_dtype("fp32") is None and accel.autocast_dtype("bf16") is torch.bfloat16


def test_autocast_on_the_cpu() -> None:
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        with accel.autocast("cpu", precision):
            assert layer(x).dtype == dtype


def test_data_on_device_choice() -> None:
    gib = 2 ** 30
    assert not accel.resolve_data_on_device("auto", "cpu", False, gib)                       # the CPU path stays
    assert accel.resolve_data_on_device("auto", "cuda", False, gib, free_bytes=10 * gib)
    assert not accel.resolve_data_on_device("auto", "cuda", False, 6 * gib, free_bytes=10 * gib)   # too big
    assert not accel.resolve_data_on_device("auto", "cuda", True, gib, free_bytes=10 * gib)  # numpy augmentation
    assert accel.resolve_data_on_device("on", "cpu", False, gib) and not accel.resolve_data_on_device("off", "cuda", False, 1)
    with pytest.raises(DatasetError, match="augment_on = device"):
        accel.resolve_data_on_device("on", "cuda", True, gib)
    with pytest.raises(DatasetError, match="data_on_device = 'gpu'"):
        accel.resolve_data_on_device("gpu", "cuda", False, gib)


def test_precision_and_data_on_device_in_the_loop(att_pack: Path, tmp_path: Path) -> None:
    """On the CPU device: the whole set as one tensor gives the very same steps as host batches; bfloat16 and
    float16 (with its GradScaler) train and are recorded; data_on_device = on with numpy augmentation is refused."""
    from faceapp.training.checkpoint import load_checkpoint

    def run(where: str, **overrides) -> tuple[list[float], dict]:
        config = TrainConfig(data=[DatasetSpec(path=str(att_pack), max_per_identity=5)], name=where, backbone="tiny",
                             input_size=64, epochs=2, batch_size=20, lr=0.05, warmup_epochs=0, log_every=1,
                             augment=AugmentConfig(), threads=1, run_dir=str(tmp_path / where),
                             out=str(tmp_path / where / "model"), **{"augment_on": "device", **overrides})
        config.validation.holdout = 0.0
        events: list[Progress] = []
        result = run_to_completion(train(config), events.append)
        return [e.metrics["loss"] for e in events if e.stage == "train"], result.card

    host, host_card = run("host", precision="fp32", data_on_device="off")
    device, device_card = run("device", precision="fp32", data_on_device="on")
    assert len(host) == 6 and device == host                          # same crops, same augmentation, same steps
    assert host_card["training"]["data_on_device"] is False and device_card["training"]["data_on_device"] is True
    assert device_card["training"]["precision"] == "fp32"
    bf16, bf16_card = run("bf16", precision="bf16", data_on_device="on")
    assert all(np.isfinite(bf16)) and bf16 != host and bf16_card["training"]["precision"] == "bf16"
    assert abs(bf16[0] - host[0]) < 0.05 * host[0]                    # the same first batch, rounded
    fp16, fp16_card = run("fp16", precision="fp16")
    assert all(np.isfinite(fp16)) and fp16_card["training"]["precision"] == "fp16"
    assert load_checkpoint(tmp_path / "fp16" / "last.pt")["scaler"]          # loss scaling for float16 only
    assert not load_checkpoint(tmp_path / "bf16" / "last.pt")["scaler"]
    with pytest.raises(DatasetError, match="data_on_device = on needs"):
        run("refused", data_on_device="on", augment_on="cpu")
