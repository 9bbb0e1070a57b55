"""Passive liveness: the two MiniFASNet classifiers on square crops around the face box, fused.

Each published model was trained on crops made by Silent-Face-Anti-Spoofing's ``CropImage``: the face box
scaled about its centre by the model's scale (2.7 for MiniFASNetV2, 4.0 for MiniFASNetV1SE; less when the
frame is too small), shifted back inside the frame, cut out and resized to 80x80 with ``cv2.resize``
(bilinear), BGR, values 0..255. ``crop_for_scale`` reproduces that. The fused score is the mean of the
models' softmax probability of class 1 ("live"), as the upstream ``test.py`` combines them.

Engines (``engine``, as the Embedder's: auto | torch | onnxruntime, default ``$FACEAPP_EMBED_ENGINE`` else
auto): on the CPU each network (BatchNorm folded, softmax appended) is exported once per weights into the
cache folder and run by onnxruntime on one thread without spin-waiting, checked against torch on a probe
batch first (``faceapp.embedding.onnx_engine``); eager torch on one intra-op thread is the fallback.

The weight files are found in ``faceapp.core.paths.pad_models_dirs`` (``--pad-model-dir``,
$FACEAPP_PAD_MODEL_DIR, <data>/pad_models, ../shared/pad_models) and refused unless their SHA-256 is the
published one. A missing or wrong file raises ModelAssetError naming it: the caller reports "not checked".
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from faceapp.core.errors import ModelAssetError
from faceapp.core.paths import pad_models_dirs
from faceapp.embedding.onnx_engine import OnnxRunner, build_runner, requested_engine, resolve_engine
from faceapp.embedding.pretrained import read_checked_state
from faceapp.liveness.policy import PassiveScore
from faceapp.nn.backbones.minifasnet import LIVE_CLASS, MiniFASNet, create_pad_backbone, load_pad_state

INPUT_SIZE = 80
_THREADS_LOCK = threading.Lock()


@dataclass(frozen=True)
class PadModelSpec:
    """A published PAD weight file: the network it loads into, its crop scale and its SHA-256."""

    name: str
    backbone: str
    filename: str
    sha256: str
    scale: float


PAD_MODELS: tuple[PadModelSpec, ...] = (
    PadModelSpec("minifasnet_v2@2.7", "minifasnet_v2", "2.7_80x80_MiniFASNetV2.pth",
                 "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0", 2.7),
    PadModelSpec("minifasnet_v1se@4.0", "minifasnet_v1se", "4_0_0_80x80_MiniFASNetV1SE.pth",
                 "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990", 4.0),
)
PAD_SOURCE = "minivision-ai/Silent-Face-Anti-Spoofing, resources/anti_spoof_models (Apache-2.0)"


def find_pad_weights(spec: PadModelSpec, model_dir: Path | None = None) -> Path:
    """The first ``spec.filename`` in the PAD folders; ModelAssetError listing where it looked."""
    searched = pad_models_dirs(model_dir)
    for folder in searched:
        if (folder / spec.filename).is_file():
            return folder / spec.filename
    raise ModelAssetError(
        f"liveness weights {spec.filename} not found (searched: {', '.join(str(d) for d in searched)}); get it "
        f"from {PAD_SOURCE} and put it in one of those folders, or point FACEAPP_PAD_MODEL_DIR "
        "(or --pad-model-dir) at the folder holding it", path=spec.filename)


def load_pad_model(spec: PadModelSpec, path: Path | None = None) -> MiniFASNet:
    """``spec``'s network with the published weights loaded strictly, checked against the SHA-256."""
    path = path or find_pad_weights(spec)
    state = read_checked_state(path, spec.sha256, spec.filename)
    net = create_pad_backbone(spec.backbone)
    return load_pad_state(net, state, what=str(path)).eval()


def crop_box(frame_w: int, frame_h: int, box: Sequence[float], scale: float) -> tuple[int, int, int, int]:
    """Inclusive pixel rectangle (x0, y0, x1, y1) of the face box scaled by ``scale`` about its centre, the
    scale lowered to fit the frame and the rectangle shifted back inside it (upstream ``CropImage``)."""
    x, y, w, h = (float(v) for v in box)
    w, h = max(w, 1.0), max(h, 1.0)
    scale = min((frame_h - 1) / h, (frame_w - 1) / w, scale)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = cx - w * scale / 2.0, cy - h * scale / 2.0
    x1, y1 = cx + w * scale / 2.0, cy + h * scale / 2.0
    if x0 < 0:
        x1 -= x0
        x0 = 0
    if y0 < 0:
        y1 -= y0
        y0 = 0
    if x1 > frame_w - 1:
        x0 -= x1 - frame_w + 1
        x1 = frame_w - 1
    if y1 > frame_h - 1:
        y0 -= y1 - frame_h + 1
        y1 = frame_h - 1
    return int(x0), int(y0), int(x1), int(y1)


def crop_for_scale(image_bgr: np.ndarray, box: Sequence[float], scale: float, size: int = INPUT_SIZE) -> np.ndarray:
    """The ``size`` x ``size`` BGR patch a model of crop scale ``scale`` was trained on."""
    h, w = image_bgr.shape[:2]
    x0, y0, x1, y1 = crop_box(w, h, box, scale)
    patch = image_bgr[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1]
    return cv2.resize(patch, (size, size))


@dataclass(frozen=True)
class _ExportConfig:
    """What ``build_runner`` keys and names an export by (the embedding ModelConfig's fields it reads)."""

    name: str
    backbone: str
    embedding_dim: int = 3
    input_size: int = INPUT_SIZE
    backbone_kwargs: dict = field(default_factory=dict)


class _LiveProbability(torch.nn.Module):
    """A PAD network followed by its softmax: the exported graph outputs class probabilities."""

    def __init__(self, net: MiniFASNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def _onnx_runner(spec: PadModelSpec, net: MiniFASNet, requested: str) -> OnnxRunner | None:
    """The onnxruntime runner of one BN-folded PAD network (one thread), None on torch or after a failed check."""
    config = _ExportConfig(name=spec.name, backbone=f"{spec.backbone}-softmax")
    return build_runner(_LiveProbability(net).eval(), config, spec.sha256, required=requested == "onnxruntime",
                        threads=1)


_POOL: Any = None


def _pool() -> Any:
    """The threads the PAD models' onnxruntime sessions run on side by side (created on first use)."""
    global _POOL
    with _THREADS_LOCK:
        if _POOL is None:
            from concurrent.futures import ThreadPoolExecutor

            _POOL = ThreadPoolExecutor(max_workers=len(PAD_MODELS), thread_name_prefix="faceapp-pad")
        return _POOL


class PassiveScorer:
    """The published MiniFASNet pair on one face box: ``score(image, box)`` -> ``PassiveScore``."""

    def __init__(self, model_dir: Path | None = None, specs: Sequence[PadModelSpec] = PAD_MODELS,
                 device: str = "cpu", engine: str | None = None) -> None:
        self.specs = tuple(specs)
        self.device = torch.device(device)
        self.paths = [find_pad_weights(spec, model_dir) for spec in self.specs]
        self.nets = [load_pad_model(spec, path).fold_batchnorm().to(self.device)
                     for spec, path in zip(self.specs, self.paths)]
        requested = requested_engine(engine)
        runners = ([_onnx_runner(spec, net, requested) for spec, net in zip(self.specs, self.nets)]
                   if resolve_engine(requested, str(self.device)) == "onnxruntime" else [])
        #: one onnxruntime runner per model, or empty (eager torch) when any of them is unavailable
        self.runners: list[OnnxRunner] = runners if runners and all(r is not None for r in runners) else []
        self.engine = "onnxruntime" if self.runners else "torch"
        #: identifies the fused scorer (thresholds are stored under it): names and weight hashes
        self.id = "pad:" + "+".join(f"{s.name}-{s.sha256[:8]}" for s in self.specs)

    def crops(self, image_bgr: np.ndarray, box: Sequence[float]) -> list[np.ndarray]:
        """One 80x80 BGR patch per model, at its crop scale."""
        return [crop_for_scale(image_bgr, box, spec.scale) for spec in self.specs]

    def score_many(self, items: Sequence[tuple[np.ndarray, Sequence[float]]]) -> list[PassiveScore]:
        """Scores of several (BGR image, face box) pairs, one batched forward pass per model.

        On onnxruntime the sessions already run on one thread without spin-waiting; eager torch also runs on
        one intra-op thread: these 0.04-GFLOP nets gain nothing from more, and on a loaded machine
        oneDNN's thread team waits for busy cores (measured: 2 threads 2,086 ms vs 1 thread ~15 ms per face
        at load 8 on 2 cores). The previous thread count is restored afterwards."""
        if not items:
            return []
        if self.runners:
            # the two single-threaded sessions run side by side (onnxruntime releases the GIL): on 2 cores the
            # pair costs about one model's time (5.4 -> 2.6 ms per face with the machine idle, `faceapp bench --stages liveness-passive`)
            jobs = [_pool().submit(runner.run, self._batch(items, spec).transpose(0, 3, 1, 2))
                    for spec, runner in zip(self.specs, self.runners)]
            return self._fuse([job.result()[:, LIVE_CLASS] for job in jobs], len(items))
        with _THREADS_LOCK:
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return self._score_many(items)
            finally:
                torch.set_num_threads(before)

    @staticmethod
    def _batch(items: Sequence[tuple[np.ndarray, Sequence[float]]], spec: PadModelSpec) -> np.ndarray:
        """(N, 80, 80, 3) float32 BGR crops at ``spec``'s scale."""
        return np.stack([crop_for_scale(image, box, spec.scale) for image, box in items]).astype(np.float32)

    @torch.inference_mode()
    def _score_many(self, items: Sequence[tuple[np.ndarray, Sequence[float]]]) -> list[PassiveScore]:
        per_model = []
        for spec, net in zip(self.specs, self.nets):
            x = torch.from_numpy(self._batch(items, spec)).to(self.device).permute(0, 3, 1, 2)
            per_model.append(torch.softmax(net(x), dim=1)[:, LIVE_CLASS].cpu().numpy())
        return self._fuse(per_model, len(items))

    def _fuse(self, per_model: Sequence[np.ndarray], count: int) -> list[PassiveScore]:
        """Per-item scores from each model's live probabilities: the models by name and their mean."""
        out = []
        for i in range(count):
            scores = {spec.name: float(p[i]) for spec, p in zip(self.specs, per_model)}
            out.append(PassiveScore(live=float(np.mean(list(scores.values()))), per_model=scores))
        return out

    def score(self, image_bgr: np.ndarray, box: Sequence[float]) -> PassiveScore:
        """The liveness score of the face in ``box`` (x, y, w, h pixels) of the BGR ``image_bgr``."""
        return self.score_many([(image_bgr, box)])[0]
