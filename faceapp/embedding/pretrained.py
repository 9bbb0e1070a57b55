"""Starting points for training: public pretrained weights registered by name, or any model folder.

    from faceapp.embedding.pretrained import resolve_start
    start = resolve_start("mobilefacenet_ms1m")       # or "models/default", or a path to a model folder
    net = start.build()                                # the backbone with the weights loaded strictly

A pretrained source names the registered backbone whose structure matches its ``state_dict``, the file it
is read from (searched in ``faceapp.core.paths.teachers_dirs()``: ``$FACEAPP_TEACHERS_DIR``, the user data
folder's ``teachers/``, ``../shared/teachers``), the file's SHA-256 (a different file is refused, not
silently loaded), its preprocessing and its lineage (data, licence, source), which every model trained from
it records in its card. The files are never copied into the repository.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from faceapp.core.errors import IncompatibleError, ModelAssetError
from faceapp.core.paths import teachers_dirs
from faceapp.embedding.model_folder import CONFIG_FILE, ModelConfig, build_backbone, load_model, weights_sha256

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MS1M_CAVEAT = (
    "Started from weights learned on MS-Celeb-1M (refined, ~85 k celebrities), which shares people with "
    "celebrity-photo benchmarks (LFW, CFP, CelebA): accuracy on those is not a clean held-out number. "
    "MS-Celeb-1M was withdrawn by its publisher; treat models derived from it as research-only.")


@dataclass(frozen=True)
class PretrainedSource:
    """Public weights that load strictly into a registered backbone."""

    name: str
    backbone: str
    filename: str
    sha256: str
    embedding_dim: int
    input_size: int = 112
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    lineage: dict[str, Any] = field(default_factory=dict)

    def model_config(self, name: str | None = None) -> ModelConfig:
        """The model-folder config that rebuilds this network and its preprocessing."""
        return ModelConfig(name=name or self.name, backbone=self.backbone, embedding_dim=self.embedding_dim,
                           input_size=self.input_size, mean=self.mean, std=self.std)


PRETRAINED: dict[str, PretrainedSource] = {}


def register_pretrained(source: PretrainedSource) -> PretrainedSource:
    """Add a pretrained source under ``source.name`` (what ``--init`` and the Trainer's "Start from" list)."""
    PRETRAINED[source.name] = source
    return source


register_pretrained(PretrainedSource(
    name="mobilefacenet_ms1m",
    backbone="mobilefacenet_relu6",
    filename="mobilefacenet_ms1m.pt",
    sha256="90a00ba1d8b0b688af3deb731ed53dca582e6106805d1bc3cfdef55f570493f4",
    embedding_dim=128,
    lineage={
        "source": "github foamliu/MobileFaceNet, weights/mobilefacenet.pt (commit a6cc903)",
        "licence": "Apache-2.0",
        "training_data": "refined MS-Celeb-1M (MS1M-ArcFace: 3.8 M faces of 85 k people)",
        "upstream_reported": "LFW 99.48 %",
        "caveat": MS1M_CAVEAT,
        "ms1m_ancestry": True,
    },
))


def list_pretrained() -> dict[str, str]:
    """name -> one line (backbone, data, licence), for CLI help and the Trainer's combo box."""
    return {n: f"{s.backbone}, {s.embedding_dim}-d, {s.lineage.get('training_data', '?')}, "
               f"{s.lineage.get('licence', '?')}" for n, s in PRETRAINED.items()}


def find_weight_file(filename: str) -> Path:
    """The first existing ``filename`` in the teachers folders; ModelAssetError listing where it looked."""
    searched = teachers_dirs()
    for folder in searched:
        path = folder / filename
        if path.is_file():
            return path
    raise ModelAssetError(
        f"pretrained weights {filename} not found; looked in {', '.join(str(d) for d in searched)}. Put the file "
        "in one of them or point FACEAPP_TEACHERS_DIR at the folder holding it", path=filename)


def load_pretrained_state(source: PretrainedSource, path: Path | None = None) -> tuple[dict[str, torch.Tensor], Path]:
    """The source's state_dict, checked against its SHA-256; ModelAssetError naming the file otherwise."""
    file = path or find_weight_file(source.filename)
    return read_checked_state(file, source.sha256, f"{source.name} weights"), file


def read_checked_state(file: Path, sha256: str, what: str) -> dict[str, torch.Tensor]:
    """The state_dict in ``file`` if its SHA-256 is ``sha256`` (the published ``what``); ModelAssetError naming
    the file when it cannot be read, has another hash or is no PyTorch state_dict."""
    try:
        data = file.read_bytes()                   # read once: hashed, then loaded from memory (a few MB)
    except OSError as exc:
        raise ModelAssetError(f"{file}: cannot read {what} ({exc})", path=str(file)) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelAssetError(f"{file}: SHA-256 {digest[:16]}... is not the published {what} "
                              f"({sha256[:16]}...): the file is corrupt or a different model", path=str(file))
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise ModelAssetError(f"{file}: not a readable PyTorch state_dict: {exc}", path=str(file)) from exc


def load_strict(net: nn.Module, state: dict[str, torch.Tensor], *, what: str, backbone: str) -> None:
    """``net.load_state_dict(state, strict=True)`` with an IncompatibleError that names ``what`` and lists the
    first missing / unexpected / mis-shaped keys, so a structure mismatch stops before any training."""
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        text = " ".join(str(exc).split())
        raise IncompatibleError(
            f"{what} does not fit backbone {backbone!r}: {text[:500]}. Choose the backbone it was trained with "
            "(its config.json or the pretrained source says which)", path=what) from exc


@dataclass
class StartingPoint:
    """Weights to start a training run from, with what rebuilds them and where they came from."""

    label: str
    config: ModelConfig
    state: dict[str, torch.Tensor]
    lineage: dict[str, Any]

    def build(self) -> nn.Module:
        """The backbone of ``config`` with ``state`` loaded strictly."""
        net = build_backbone(self.config, source=self.label)
        load_strict(net, self.state, what=self.label, backbone=self.config.backbone)
        return net


def resolve_start(spec: str) -> StartingPoint:
    """A starting point from a registered pretrained name or a model folder path.

    The lineage records the source, the file's SHA-256, its training data and licence; a model folder
    passes on the lineage in its own card (so a fine-tune of a fine-tune still names the original start).
    """
    if spec in PRETRAINED:
        source = PRETRAINED[spec]
        state, file = load_pretrained_state(source)
        lineage = {"kind": "pretrained", "name": source.name, "file": file.name, "sha256": source.sha256,
                   **source.lineage}
        return StartingPoint(source.name, source.model_config(), state, lineage)
    folder = Path(spec)
    if not (folder / CONFIG_FILE).is_file():
        known = ", ".join(sorted(PRETRAINED)) or "none"
        raise ModelAssetError(f"starting point {spec!r} is neither a model folder (no {CONFIG_FILE} in it) nor a "
                              f"registered pretrained source ({known})", path=spec)
    net, config, card = load_model(folder)
    inherited = card.get("lineage", {}) if isinstance(card.get("lineage"), dict) else {}
    lineage = {"kind": "model_folder", "name": card.get("name", folder.name), "path": str(folder),
               "sha256": weights_sha256(folder), "training_data": card.get("data"),
               "ms1m_ancestry": bool(inherited.get("ms1m_ancestry", False)
                                     or (inherited.get("start") or {}).get("ms1m_ancestry", False)
                                     or (inherited.get("teacher") or {}).get("ms1m_ancestry", False)),
               "lineage": inherited}
    return StartingPoint(str(folder), config, net.state_dict(), lineage)


def start_architecture(spec: str) -> ModelConfig:
    """The config of a starting point without loading its weights (for checks before any work starts)."""
    if spec in PRETRAINED:
        return PRETRAINED[spec].model_config()
    folder = Path(spec)
    if not (folder / CONFIG_FILE).is_file():
        known = ", ".join(sorted(PRETRAINED)) or "none"
        raise ModelAssetError(f"starting point {spec!r} is neither a model folder (no {CONFIG_FILE} in it) nor a "
                              f"registered pretrained source ({known})", path=spec)
    from faceapp.embedding.model_folder import read_config
    return read_config(folder)
