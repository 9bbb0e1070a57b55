"""How a training run uses its device: numeric precision and where the training set lives.

``precision`` (TrainConfig): "auto" = bfloat16 autocast on a CUDA device that supports it (Ampere and
later), float16 autocast with a GradScaler on older CUDA devices, float32 on the CPU; "fp32", "fp16" and
"bf16" force one (on the CPU too: torch autocasts there, which is slower than float32 on most CPUs but lets
the tests run every path). Only the backbone's forward runs in the reduced type; the loss (margins, the
classifier's cosines) runs in float32, and only float16 needs loss scaling (its range is too short for
small gradients; bfloat16 has float32's range).

``data_on_device`` (TrainConfig): "auto" = the whole training set as one uint8 tensor on the device when
training on CUDA with the batches built there (augmentation on the device, or none) and it takes at most
``DEVICE_SHARE`` of the free device memory; "on" forces it (on the CPU device too: the tests' path); "off"
gathers each batch from the crops in host memory. On the device a batch is an index into that tensor: no
host gather, no copy per step, which is what keeps a data-centre GPU busy.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from faceapp.core.errors import DatasetError
from faceapp.training.config import DATA_ON_DEVICE, PRECISIONS

DEVICE_SHARE = 0.5
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def cuda_bf16_supported(device: str) -> bool:
    """Whether a CUDA device computes bfloat16 natively (compute capability 8.0 or later)."""
    try:
        major, _ = torch.cuda.get_device_capability(torch.device(device))
    except (AssertionError, RuntimeError):
        return False
    return major >= 8


def resolve_precision(precision: str, device: str) -> str:
    """"fp32", "fp16" or "bf16" for a run on ``device`` (already resolved: "cpu", "cuda", "cuda:N")."""
    if precision not in PRECISIONS:
        raise DatasetError(f"training setting precision = {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "bf16" if cuda_bf16_supported(device) else "fp16"
    return "fp32"


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast type of a resolved precision (None for float32)."""
    return _DTYPES.get(precision)


def needs_grad_scaler(precision: str) -> bool:
    """Loss scaling is needed for float16 only."""
    return precision == "fp16"


@contextlib.contextmanager
def autocast(device: str, precision: str) -> Iterator[None]:
    """Autocast the forward pass in ``precision`` on ``device`` (nothing for float32)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=torch.device(device).type, dtype=dtype):
        yield


def resolve_data_on_device(setting: str, device: str, cpu_augment: bool, n_bytes: int,
                           free_bytes: int | None = None) -> bool:
    """Whether the training set goes to the device as one uint8 tensor.

    ``cpu_augment``: augmentation is on and runs on the CPU (numpy), so batches must come from host memory.
    ``free_bytes``: free device memory (default: asked from CUDA), for "auto".
    """
    if setting not in DATA_ON_DEVICE:
        raise DatasetError(f"training setting data_on_device = {setting!r}: expected one of {', '.join(DATA_ON_DEVICE)}")
    if setting == "off":
        return False
    if setting == "on":
        if cpu_augment:
            raise DatasetError("training setting data_on_device = on needs the batches built on the device: "
                           "augment_on = device (or auto on CUDA), or augmentation off")
        return True
    if cpu_augment or not device.startswith("cuda"):
        return False
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(torch.device(device))
    return n_bytes <= DEVICE_SHARE * free_bytes
