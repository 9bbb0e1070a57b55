"""The Embedder: aligned 112x112 BGR face crops -> L2-normalised float32 embeddings.

    emb = Embedder.load()                    # $FACEAPP_EMBED_MODEL, else models/default, else UNTRAINED
    vectors = emb.embed(crops)               # (N, emb.dim) float32, unit rows
    emb.model_id                             # "<name>@<sha256(weights.pt)[:12]>": key of stored templates
    emb.trained                              # False for the untrained fallback: NOT a face recogniser

Runs on CUDA when available (``device="auto"``), else on the CPU with BatchNorm folded into the
convolutions, through onnxruntime when it is installed (``engine="auto"``, faceapp.embedding.onnx_engine:
checked against torch, about twice as fast at batch 1 and robust to shared cores; the folder's int8 network
when it ships one, faceapp.embedding.int8, faster again), else eager torch with channels-last tensors (same
function). Optional flip test-time augmentation:
embedding(crop) + embedding(mirrored crop), then normalise. One lock serialises calls, so an Embedder
may be shared between the GUI's worker thread and others.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from faceapp.core.errors import IncompatibleError
from faceapp.core.paths import ENV_EMBED_MODEL, bundled_models_dir
from faceapp.embedding.model_folder import (CONFIG_FILE, ModelConfig, as_crop_list, build_backbone, load_model, model_id_of,
                                             preprocess, weights_sha256)
from faceapp.embedding.onnx_engine import build_runner, onnxruntime_available, requested_engine, resolve_engine
from faceapp.matching.index import normalize_rows
from faceapp.nn.backbones import prepare_for_inference, resolved_kwargs

ENV_MODEL = ENV_EMBED_MODEL
# Used when no trained model is installed: the compact backbone that meets the 5 ms/face CPU target with the
# widest margin (docs/models.md; MobileFaceNet at width 1 is borderline on 2 cores).
UNTRAINED_BACKBONE = "resnet9"
UNTRAINED_DIM = 128
UNTRAINED_SEED = 0

log = logging.getLogger(__name__)


def resolve_device(device: str | None = "auto") -> str:
    """"auto" -> "cuda" when available else "cpu"; an unavailable or unknown device raises IncompatibleError."""
    name = (device or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise IncompatibleError(f"device {device!r} is not a torch device (use auto, cpu, cuda or cuda:N)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise IncompatibleError(f"device {device!r} requested but CUDA is not available here; use --device cpu or auto")
    if dev.type not in ("cpu", "cuda"):
        raise IncompatibleError(f"device {device!r} is not supported (use auto, cpu, cuda or cuda:N)")
    return str(dev)


def default_model_dir() -> Path | None:
    """$FACEAPP_EMBED_MODEL (must be a model folder), else the shipped ``models/default`` (inside the installed
    package, or the repository's; ``faceapp.core.paths.bundled_models_dir``) if it holds a config.json, else None."""
    env = os.environ.get(ENV_MODEL, "").strip()
    if env:
        return Path(env).expanduser()
    bundled = bundled_models_dir() / "default"
    return bundled if (bundled / CONFIG_FILE).is_file() else None


def state_sha256(net: nn.Module) -> str:
    """sha256 over a network's state_dict (names, dtypes, shapes, values): an id for in-memory weights."""
    digest = hashlib.sha256()
    for key, value in net.state_dict().items():
        t = value.detach().to("cpu").contiguous()
        digest.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return digest.hexdigest()


class Embedder:
    """A loaded embedding network plus its preprocessing; see the module docstring."""

    def __init__(self, net: nn.Module, config: ModelConfig, card: dict[str, Any] | None = None, *,
                 folder: Path | None = None, weights_sha: str | None = None, device: str = "auto",
                 flip_tta: bool = False, optimize: bool = True, engine: str | None = None) -> None:
        """Wrap ``net`` (left untouched: a prepared copy is used). ``weights_sha`` defaults to a hash of its state.

        ``engine``: auto | torch | onnxruntime (None: ``$FACEAPP_EMBED_ENGINE``, else auto); ``optimize=False``
        means plain eager torch (no folding, no onnxruntime)."""
        self.config = config
        self.card: dict[str, Any] = dict(card or {})
        self.folder = Path(folder) if folder is not None else None
        self.device = resolve_device(device)
        self.flip_tta = bool(flip_tta)
        self.name = config.name
        self.dim = int(config.embedding_dim)
        self.trained = self.card.get("trained") is True
        self.weights_sha256 = weights_sha or state_sha256(net)
        self.model_id = model_id_of(self.name, self.weights_sha256)
        self._channels_last = optimize
        self.net = prepare_for_inference(net, fuse=optimize, channels_last=optimize, device=self.device)
        requested = requested_engine(engine)
        self._onnx = self._int8_runner(requested) if optimize else None
        if self._onnx is not None:
            self.engine = "onnxruntime-int8"
        else:
            wanted = resolve_engine(requested, self.device, config.backbone) if optimize else "torch"
            self._onnx = (build_runner(self.net, config, self.weights_sha256, required=requested == "onnxruntime")
                          if wanted == "onnxruntime" else None)
            self.engine = "onnxruntime" if self._onnx is not None else "torch"
        self._lock = threading.Lock()

    def _int8_runner(self, requested: str) -> Any:
        """The folder's int8 network when ``requested`` is auto or onnxruntime-int8 and it can run here (CPU,
        onnxruntime, the file as its card describes it); None otherwise (auto: with a warning when the file is
        bad). onnxruntime-int8 that cannot run raises IncompatibleError saying why."""
        from faceapp.embedding.int8 import REMAKE_HINT, int8_entry, int8_runner

        if requested not in ("auto", "onnxruntime-int8"):
            return None
        required = requested == "onnxruntime-int8"
        reason = None
        if self.folder is None or int8_entry(self.card) is None:
            reason = (f"{self.folder or self.name} has no int8 network; "
                      f"{REMAKE_HINT.format(folder=self.folder or 'MODEL_FOLDER')}")
        elif not self.device.startswith("cpu"):
            reason = f"the int8 network runs on the CPU only; device is {self.device}"
        elif not onnxruntime_available():
            reason = "the int8 network needs onnxruntime, which is not installed (pip install onnxruntime)"
        if reason is not None:
            if required:
                raise IncompatibleError(reason)
            return None
        try:
            return int8_runner(self.folder, self.card, self.weights_sha256, threads=torch.get_num_threads())
        except IncompatibleError as error:
            if required:
                raise
            log.warning("%s; using the fp32 network", error)
            return None

    # ----------------------------------------------------------------------------------------- construction
    @classmethod
    def load(cls, model_dir: str | Path | None = None, *, device: str = "auto", flip_tta: bool = False,
             optimize: bool = True, engine: str | None = None) -> "Embedder":
        """Load a model folder; None -> $FACEAPP_EMBED_MODEL, else models/default, else an untrained net.

        Raises ModelAssetError naming the file when the folder is missing or broken.
        """
        folder = Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
        if folder is None:
            return cls.untrained(device=device, flip_tta=flip_tta, optimize=optimize, engine=engine)
        net, config, card = load_model(folder)
        return cls(net, config, card, folder=folder, weights_sha=weights_sha256(folder), device=device,
                   flip_tta=flip_tta, optimize=optimize, engine=engine)

    @classmethod
    def untrained(cls, backbone: str = UNTRAINED_BACKBONE, embedding_dim: int = UNTRAINED_DIM, *, seed: int = UNTRAINED_SEED,
                  device: str = "auto", flip_tta: bool = False, optimize: bool = True, engine: str | None = None,
                  **backbone_kwargs: Any) -> "Embedder":
        """A randomly initialised (seeded, so deterministic) network, ``trained=False``, name ``untrained-<backbone>``.

        For plumbing and tests until a trained model exists; its similarities mean nothing.
        """
        config = ModelConfig(name=f"untrained-{backbone}", backbone=backbone, embedding_dim=embedding_dim,
                             backbone_kwargs=resolved_kwargs(backbone, **backbone_kwargs))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build_backbone(config)
        card = {"trained": False, "name": config.name, "backbone": backbone, "seed": seed,
                "note": "untrained network: embeddings are not a face recogniser"}
        return cls(net.eval(), config, card, device=device, flip_tta=flip_tta, optimize=optimize, engine=engine)

    # ------------------------------------------------------------------------------------------ inference
    def embed(self, crops: Sequence[np.ndarray] | np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Embed aligned BGR uint8 crops (one crop or many) -> (N, dim) float32 with unit-norm rows."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        items = as_crop_list(crops)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        with self._lock, torch.inference_mode():
            for start in range(0, len(items), batch_size):
                chunk = items[start:start + batch_size]
                if self._onnx is not None:
                    out[start:start + len(chunk)] = self._embed_onnx(chunk)
                    continue
                x = preprocess(chunk, self.config, channels_last=self._channels_last).to(self.device)
                if self.flip_tta:
                    x = torch.cat([x, x.flip(3)])
                if self._channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)      # no copy unless flip/cat changed it
                y = self.net(x).float()
                if self.flip_tta:
                    y = y[: len(chunk)] + y[len(chunk):]
                y = torch.nn.functional.normalize(y, dim=1)
                out[start:start + len(chunk)] = y.cpu().numpy()
        return out

    def _embed_onnx(self, chunk: list[np.ndarray]) -> np.ndarray:
        """One batch through onnxruntime: the same preprocessing, flip TTA and normalisation as the torch path."""
        x = preprocess(chunk, self.config).numpy()
        if self.flip_tta:
            x = np.concatenate([x, x[..., ::-1]])
        y = self._onnx.run(x)
        if self.flip_tta:
            y = y[: len(chunk)] + y[len(chunk):]
        return normalize_rows(y)

    def embed_one(self, crop: np.ndarray) -> np.ndarray:
        """Embed a single aligned crop -> (dim,) float32 unit vector."""
        return self.embed([crop])[0]

    # ------------------------------------------------------------------------------------------- reporting
    def info(self) -> dict[str, Any]:
        """JSON-ready summary for CLI output and the GUI status bar (``trained`` is always present)."""
        card = self.card
        return {
            "name": self.name, "model_id": self.model_id, "trained": self.trained, "dim": self.dim,
            "backbone": self.config.backbone, "input_size": self.config.input_size, "device": self.device,
            "engine": self.engine,
            "flip_tta": self.flip_tta, "folder": str(self.folder) if self.folder else None,
            "weights_sha256": self.weights_sha256, "created": card.get("created"),
            "metrics": card.get("metrics", {}),
        }

    def __repr__(self) -> str:
        state = "trained" if self.trained else "UNTRAINED"
        return (f"Embedder({self.model_id}, {state}, dim={self.dim}, device={self.device}, engine={self.engine}, "
                f"flip_tta={self.flip_tta})")
