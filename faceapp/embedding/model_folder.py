"""Model folders: ``weights.pt`` + ``config.json`` + ``model_card.json`` (see docs/models.md).

- ``weights.pt``: the backbone's ``state_dict`` (CPU tensors), read with ``torch.load(weights_only=True)``.
- ``config.json``: what rebuilds the net and its preprocessing (``ModelConfig``).
- ``model_card.json``: free-form facts about the model (data, loss, hyper-parameters, metrics, date,
  train time, device) that the trainer fills; ``"trained": true`` marks a usable recogniser.

Anything wrong with a folder raises ModelAssetError naming the file and what is wrong with it.
"""

from __future__ import annotations

import datetime as _dt
import json
import pickle
import zipfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from faceapp.core.errors import FaceAppError, ModelAssetError
from faceapp.core.files import atomic_file, atomic_write, file_sha256
from faceapp.nn.backbones import BACKBONES, create_backbone, resolved_kwargs

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.json"
CARD_FILE = "model_card.json"
FORMAT = "faceapp-model/1"


@dataclass
class ModelConfig:
    """Everything needed to rebuild a backbone and feed it: architecture, sizes, normalisation."""

    name: str
    backbone: str
    embedding_dim: int
    input_size: int = 112
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)    # RGB, applied to x/255
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists) with the format tag."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return {"format": FORMAT, **d}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = CONFIG_FILE) -> "ModelConfig":
        """Validate a parsed config.json; ModelAssetError names ``source`` and the bad field."""
        if not isinstance(data, dict):
            raise ModelAssetError(f"{source}: expected a JSON object, got {type(data).__name__}", path=source)
        known = {f.name for f in fields(cls)}
        for key in ("name", "backbone", "embedding_dim"):
            if key not in data:
                raise ModelAssetError(f"{source}: missing field {key!r}", path=source)
        kwargs = {k: v for k, v in data.items() if k in known}

        def bad(key: str, what: str) -> ModelAssetError:
            return ModelAssetError(f"{source}: field {key!r} must be {what}, got {data.get(key)!r}", path=source)

        for key in ("name", "backbone"):
            if not isinstance(kwargs[key], str) or not kwargs[key]:
                raise bad(key, "a non-empty string")
        for key in ("embedding_dim", "input_size"):
            if key in kwargs and (isinstance(kwargs[key], bool) or not isinstance(kwargs[key], int) or kwargs[key] < 1):
                raise bad(key, "a positive integer")
        for key in ("mean", "std"):
            if key in kwargs:
                v = kwargs[key]
                if (not isinstance(v, (list, tuple)) or len(v) != 3
                        or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in v)):
                    raise bad(key, "a list of 3 numbers (RGB)")
                if key == "std" and any(c <= 0 for c in v):
                    raise bad(key, "positive")
                kwargs[key] = tuple(float(c) for c in v)
        if "backbone_kwargs" in kwargs and not isinstance(kwargs["backbone_kwargs"], dict):
            raise bad("backbone_kwargs", "a JSON object")
        if kwargs["backbone"] not in BACKBONES:
            raise ModelAssetError(f"{source}: unknown backbone {kwargs['backbone']!r}; known backbones: "
                                  f"{', '.join(BACKBONES.names())}", path=source)
        return cls(**kwargs)


def build_backbone(config: ModelConfig, *, source: str = CONFIG_FILE) -> nn.Module:
    """The (randomly initialised) backbone a config describes; ModelAssetError naming ``source`` if it can't be built."""
    try:
        return create_backbone(config.backbone, embedding_dim=config.embedding_dim, input_size=config.input_size,
                               **config.backbone_kwargs)
    except FaceAppError as exc:
        raise ModelAssetError(f"{source}: cannot build the network: {exc}", path=source) from exc


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n").encode("utf-8")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, _dt.datetime, _dt.date)):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    raise TypeError(f"model card value of type {type(obj).__name__} is not JSON serialisable")


def utc_now() -> str:
    """Current UTC time as ISO 8601 (seconds), the model card's date format."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def save_model(folder: str | Path, net: nn.Module, config: ModelConfig, card: dict[str, Any]) -> Path:
    """Write ``net``'s weights, ``config`` and ``card`` into ``folder`` (created); returns the folder.

    ``config.json`` records the backbone's options with their defaults filled in. The card is copied and
    completed with ``format``, ``created`` (if absent), ``backbone``,
    ``embedding_dim``, ``params`` and ``weights_sha256``; ``trained`` defaults to True (pass
    ``"trained": False`` for an untrained network). Refuses a net whose weights don't fit ``config``
    (e.g. a BN-folded inference copy), so every saved folder loads back.
    """
    folder = Path(folder)
    try:
        full_kwargs = resolved_kwargs(config.backbone, **config.backbone_kwargs)
    except FaceAppError as exc:
        raise ModelAssetError(f"{folder}: cannot save: {exc}", path=str(folder)) from exc
    config = replace(config, backbone_kwargs=full_kwargs)      # defaults recorded: immune to future changes
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}
    reference = build_backbone(config)
    try:
        reference.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelAssetError(f"{folder}: the network does not match config (backbone {config.backbone!r}, "
                              f"embedding_dim {config.embedding_dim}): {_short(exc)}", path=str(folder)) from exc
    weights = folder / WEIGHTS_FILE
    with atomic_file(weights) as fh:
        torch.save(state, fh)
    atomic_write(folder / CONFIG_FILE, _json_bytes(config.to_dict()))
    full = {"format": FORMAT, "name": config.name, "trained": True, "created": utc_now()}
    full.update(card)
    full.update({"backbone": config.backbone, "embedding_dim": config.embedding_dim,
                 "input_size": config.input_size, "params": sum(v.numel() for v in reference.parameters()),
                 "weights_sha256": weights_sha256(folder)})
    atomic_write(folder / CARD_FILE, _json_bytes(full))
    return folder


def _short(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def model_id_of(name: str, sha256: str) -> str:
    """A model's id, ``<name>@<first 12 hex digits of its weights' SHA-256>``: templates are stored under it."""
    return f"{name}@{sha256[:12]}"


def weights_sha256(folder: str | Path) -> str:
    """Hex sha256 of ``folder/weights.pt`` (the model's identity: templates are stored under it)."""
    path = Path(folder) / WEIGHTS_FILE
    try:
        return file_sha256(path)
    except OSError as exc:
        raise ModelAssetError(f"{path}: cannot read weights: {exc.strerror or exc}", path=str(path)) from exc


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ModelAssetError(f"{path}: file missing", path=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelAssetError(f"{path}: cannot read: {exc}", path=str(path)) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelAssetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})", path=str(path)) from exc


def read_config(folder: str | Path) -> ModelConfig:
    """Parse and validate ``folder/config.json``."""
    path = Path(folder) / CONFIG_FILE
    return ModelConfig.from_dict(_read_json(path), source=str(path))


def read_card(folder: str | Path) -> dict[str, Any]:
    """``folder/model_card.json`` as a dict; {} when the folder has none (then the model counts as untrained)."""
    path = Path(folder) / CARD_FILE
    if not path.exists():
        return {}
    card = _read_json(path)
    if not isinstance(card, dict):
        raise ModelAssetError(f"{path}: expected a JSON object, got {type(card).__name__}", path=str(path))
    return card


def write_card(folder: str | Path, card: dict[str, Any]) -> Path:
    """Replace ``folder/model_card.json`` (e.g. to add evaluation metrics later); the weights are untouched."""
    path = Path(folder) / CARD_FILE
    atomic_write(path, _json_bytes(card))
    return path


def update_card(folder: str | Path, **updates: Any) -> dict[str, Any]:
    """Merge ``updates`` into the card (nested dicts such as ``metrics`` are merged one level deep)."""
    card = read_card(folder)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(card.get(key), dict):
            card[key] = {**card[key], **value}
        else:
            card[key] = value
    write_card(folder, card)
    return card


def read_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """``folder/weights.pt`` as a state_dict of tensors; ModelAssetError for missing/corrupt/odd files."""
    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise ModelAssetError(f"{path}: weights file missing", path=str(path))
    if path.stat().st_size == 0:
        raise ModelAssetError(f"{path}: weights file is empty (0 bytes)", path=str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError,
            AttributeError, ImportError, KeyError, IndexError) as exc:
        raise ModelAssetError(f"{path}: not a readable PyTorch weights file (truncated or corrupt?): {_short(exc, 200)}",
                              path=str(path)) from exc
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ModelAssetError(f"{path}: expected a state_dict (names -> tensors), got {type(state).__name__}",
                              path=str(path))
    return state


def load_model(folder: str | Path) -> tuple[nn.Module, ModelConfig, dict[str, Any]]:
    """Rebuild the network of a model folder in eval mode, with its config and card.

    ModelAssetError names the file and the problem: missing folder/file, invalid JSON or field, unknown
    backbone, truncated or garbage weights, or weights of a different architecture.
    """
    folder = Path(folder)
    if folder.is_file():
        raise ModelAssetError(f"{folder}: is a file; expected a model folder holding {CONFIG_FILE}, {WEIGHTS_FILE} "
                              f"and {CARD_FILE}", path=str(folder))
    if not folder.is_dir():
        raise ModelAssetError(f"{folder}: model folder not found (expected {CONFIG_FILE}, {WEIGHTS_FILE}, {CARD_FILE})",
                              path=str(folder))
    config = read_config(folder)
    net = build_backbone(config, source=str(folder / CONFIG_FILE))
    state = read_weights(folder)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        path = folder / WEIGHTS_FILE
        raise ModelAssetError(f"{path}: weights do not match the architecture in {CONFIG_FILE} (backbone "
                              f"{config.backbone!r}, embedding_dim {config.embedding_dim}): {_short(exc)}",
                              path=str(path)) from exc
    card = read_card(folder)
    return net.eval(), config, card


def preprocess(crops_bgr: np.ndarray | Sequence[np.ndarray], config: ModelConfig, *,
               channels_last: bool = False) -> torch.Tensor:
    """Aligned BGR uint8 crops -> float tensor (N, 3, S, S): RGB, ``(x/255 - mean) / std``.

    Accepts one crop (H, W, 3) or (H, W) grey, a batch (N, H, W, 3), or a sequence of crops. Crops of
    another size than ``config.input_size`` are resized (area interpolation), so 112x112 aligned crops
    feed a model trained at 96 or 64 too. ``channels_last=True`` returns the tensor in NHWC memory (the
    crops' own layout: no transpose copy; what the Embedder feeds its channels-last network).
    """
    size = config.input_size
    items = as_crop_list(crops_bgr)
    if not items:
        return torch.empty(0, 3, size, size)
    batch = np.stack([_one_crop(crop, size, i) for i, crop in enumerate(items)])      # (N, S, S, 3)
    x = normalize_bgr(torch.from_numpy(batch).permute(0, 3, 1, 2).float(), config)      # NHWC memory, like the crops
    return x if channels_last else x.contiguous()


def normalize_bgr(x: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Float BGR crops (N, 3, H, W) in 0..255, on any device -> the network's input: RGB, ``(x/255 - mean) / std``
    (a new tensor). The batched form of ``preprocess`` for crops already in a tensor (training, GPU augmentation)."""
    mean = torch.tensor(config.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(config.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1) * 255.0
    return (x.flip(1) - mean) / std


def as_crop_list(crops: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """One crop (H, W[, C]) -> [crop]; a batch array (N, H, W[, C]) or a sequence -> list of crops."""
    if isinstance(crops, np.ndarray):
        single = crops.ndim == 2 or (crops.ndim == 3 and crops.shape[-1] in (1, 3, 4))
        return [crops] if single else list(crops)
    return list(crops)


def _one_crop(crop: Any, size: int, index: int) -> np.ndarray:
    arr = np.asarray(crop)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 8 or arr.shape[1] < 8:
        raise ValueError(f"face crop {index}: expected an HxWx3 BGR image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"face crop {index}: expected numbers, got dtype {arr.dtype}")
        arr = np.clip(arr, 0, 255).astype(np.float32)
    if arr.shape[0] != size or arr.shape[1] != size:
        interp = cv2.INTER_AREA if arr.shape[0] > size else cv2.INTER_LINEAR
        arr = cv2.resize(arr, (size, size), interpolation=interp)
    return arr                            # uint8, or float32 in 0..255
