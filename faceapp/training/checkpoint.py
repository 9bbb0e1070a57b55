"""Training checkpoints: explicit keys, loaded with ``weights_only=True``.

Keys: ``format``, ``arch`` (what must match to resume: backbone, its options, embedding size, loss,
loss hyper-parameters, number of classes), ``identities`` (label order), ``config`` (the full TrainConfig),
``model``, ``loss`` (the loss's own parameters: classifier weights, centres...), ``optimizer``, ``scaler``,
``step``, ``epoch``, ``batch`` (next batch of that epoch), ``rng`` (torch CPU/CUDA generator states),
``best`` (the best validation so far), ``history`` (per-epoch records), ``train_time_s``.
Samplers and augmentation are pure functions of (seed, epoch, step), so no other RNG state is needed.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from faceapp.core.errors import IncompatibleError, InputFileError
from faceapp.core.files import atomic_file

FORMAT = "faceapp-checkpoint/1"
ARCH_KEYS = ("backbone", "backbone_params", "embedding_dim", "loss", "loss_params", "num_classes")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus the format tag) atomically: a crash never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:
        torch.save({"format": FORMAT, **state}, fh)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint; ``InputFileError`` naming the file when it is missing, corrupt or not ours."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"checkpoint {path} does not exist", path=str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise InputFileError(f"checkpoint {path} is not a readable PyTorch checkpoint: {str(exc)[:200]}",
                             path=str(path)) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputFileError(f"checkpoint {path} is not a FaceApp training checkpoint (format {FORMAT})",
                             path=str(path))
    return state


def check_compatible(state: dict[str, Any], arch: dict[str, Any], identities: list[str], path: str | Path) -> None:
    """``IncompatibleError`` naming each difference between a checkpoint and the run that wants to resume it."""
    saved = state.get("arch", {})
    diffs = [f"{key}: checkpoint {saved.get(key)!r}, this run {arch.get(key)!r}"
             for key in ARCH_KEYS if saved.get(key) != arch.get(key)]
    if diffs:
        raise IncompatibleError(f"cannot resume from {path}: it was trained with a different architecture ("
                                + "; ".join(diffs) + ")", path=str(path))
    if state.get("identities") != identities:
        raise IncompatibleError(f"cannot resume from {path}: it was trained on other identities (different data "
                                "folders, filters or alignment results); start a new run instead", path=str(path))
