"""Teachers for distillation: fixed face-embedding networks, named by a spec string.

    teacher = resolve_teacher("mobilefacenet_ms1m")     # or "models/default", "onnx:net.onnx", "dlib"
    vectors = teacher.embed(crops)                       # (N, 112, 112, 3) BGR uint8 -> (N, D) unit float32

Specs:

- a registered pretrained name (``faceapp.embedding.pretrained.PRETRAINED``, e.g. ``mobilefacenet_ms1m``);
- a model folder path (``config.json`` + ``weights.pt``), run with its own preprocessing;
- ``onnx:PATH[?mean=R,G,B&std=R,G,B&order=rgb|bgr]`` through onnxruntime (``pip install -e ".[onnx]"``);
  ImageNet mean/std on RGB by default; a model whose batch dimension is fixed runs one crop at a time;
- ``dlib``: dlib's ResNet (``pip install -e ".[dlib]"``), fed dlib's own 150x150 chip made from our aligned
  crop (see ``DlibTeacher``).

Every teacher has a stable ``id`` that includes its weight file's SHA-256 (the teacher-embedding cache is
keyed by it, so another file never reuses stale vectors), its ``embedding_dim`` and a ``lineage`` dict
(name, file, sha256, training data, licence, ms1m_ancestry) that the trained model's card records. Any
problem (missing file or optional package, wrong ONNX shapes) raises a ``FaceAppError`` naming the file and
what to do, when the teacher is resolved: before a run aligns or trains anything.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import cv2
import numpy as np
import torch
from torch import nn

from faceapp.core.errors import ExitCode, FaceAppError, ModelAssetError
from faceapp.embedding.model_folder import CONFIG_FILE, ModelConfig, normalize_bgr, preprocess
from faceapp.core.files import file_sha256
from faceapp.embedding.pretrained import IMAGENET_MEAN, IMAGENET_STD, PRETRAINED, resolve_start

DLIB_INSTALL = 'pip install -e ".[dlib]"'
ONNX_INSTALL = 'pip install -e ".[onnx]"'
CROP = 112


class TeacherSpecError(FaceAppError):
    """A teacher spec is malformed (unknown option, bad number); the message names it and the accepted form."""

    exit_code = ExitCode.USAGE


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:40] or "teacher"


MS1M_TEACHER_CAVEAT = (
    "Distilled from a teacher trained on MS-Celeb-1M (refined, ~85 k celebrities), which shares people with "
    "celebrity-photo benchmarks (LFW, CFP, CelebA): accuracy on those is not a clean held-out number. "
    "MS-Celeb-1M was withdrawn by its publisher; treat models derived from it as research-only.")


def _teacher_lineage(lineage: dict[str, Any]) -> dict[str, Any]:
    """A source's lineage worded for a teacher (its MS1M caveat speaks of distillation, not of a start)."""
    out = dict(lineage)
    if out.get("ms1m_ancestry"):
        out["caveat"] = MS1M_TEACHER_CAVEAT
    return out


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Teacher(ABC):
    """A fixed embedding network: ``embed`` maps aligned crops to L2-normalised vectors."""

    name: str
    id: str
    embedding_dim: int
    lineage: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64          # crops per ``embed`` call that the cache feeds

    @abstractmethod
    def _embed(self, crops: np.ndarray) -> np.ndarray:
        """Raw (N, D) embeddings of checked crops."""

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) BGR uint8 aligned crops -> (N, D) float32, each row of unit length."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
            raise ValueError(f"teacher {self.name}: expected (N, H, W, 3) uint8 BGR crops, got {crops.shape} "
                             f"{crops.dtype}")
        if len(crops) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        out = np.asarray(self._embed(crops), dtype=np.float32).reshape(len(crops), -1)
        if out.shape[1] != self.embedding_dim:
            raise ModelAssetError(f"teacher {self.name} returned {out.shape[1]}-d vectors, expected "
                                  f"{self.embedding_dim}", path=self.name)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def close(self) -> None:
        """Release what the teacher holds (sessions, GPU memory); default: nothing."""


class TorchTeacher(Teacher):
    """A PyTorch backbone (a pretrained source or a model folder) in eval mode, on ``device``."""

    def __init__(self, net: nn.Module, config: ModelConfig, *, name: str, sha256: str, lineage: dict[str, Any],
                 device: str = "cpu") -> None:
        prep = _digest({k: v for k, v in config.to_dict().items() if k != "name"})[:8]
        super().__init__(name=name, id=f"torch-{_slug(name)}-{sha256[:16]}-{prep}",
                         embedding_dim=config.embedding_dim, lineage=lineage)
        self.config = config
        self.device = device
        self.net = net.to(device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def _embed(self, crops: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = preprocess(crops, self.config).to(self.device)
            return self.net(x).float().cpu().numpy()

    def embed_tensor(self, bgr: torch.Tensor) -> torch.Tensor:
        """Float BGR crops (N, 3, H, W) in 0..255 on the teacher's device (e.g. an augmented training batch)
        -> (N, D) unit vectors on that device, without leaving it."""
        with torch.no_grad():           # not inference_mode: the vectors feed a loss that autograd records
            size = self.config.input_size
            if bgr.shape[-1] != size or bgr.shape[-2] != size:
                bgr = torch.nn.functional.interpolate(bgr, size=(size, size), mode="area")
            y = self.net(normalize_bgr(bgr.float(), self.config)).float()
            return torch.nn.functional.normalize(y, dim=1)

    def close(self) -> None:
        self.net.to("cpu")


def _torch_teacher(spec: str, device: str) -> TorchTeacher:
    start = resolve_start(spec)
    lineage = _teacher_lineage(start.lineage)
    if lineage.get("kind") == "model_folder":
        from faceapp.embedding.model_folder import read_card

        card = read_card(spec)
        lineage.setdefault("licence", card.get("licence") or "unspecified (see the teacher's model card; "
                           "models trained on research datasets inherit their terms)")
    lineage.setdefault("ms1m_ancestry", False)
    name = str(lineage.get("name") or start.label)
    teacher = TorchTeacher(start.build(), start.config, name=name, sha256=str(lineage["sha256"]), lineage=lineage,
                           device=device)
    lineage["teacher_id"] = teacher.id
    return teacher


# ------------------------------------------------------------------------------------------------- ONNX
# ONNX exports of registered pretrained weights: same lineage as the source (matched by the file's SHA-256).
KNOWN_ONNX = {"b7120c095d60094f28a4a54ba6a8bf51b297a6273fb40ef6350dfec1f63d9507": "mobilefacenet_ms1m"}
ONNX_OPTIONS = ("mean", "std", "order")


def parse_onnx_spec(spec: str) -> tuple[Path, dict[str, Any]]:
    """``onnx:PATH?mean=..&std=..&order=rgb`` -> (path, options with defaults); TeacherSpecError if malformed."""
    body = spec[len("onnx:"):]
    path_text, _, query = body.partition("?")
    if not path_text:
        raise TeacherSpecError(f"teacher {spec!r}: expected onnx:PATH, e.g. onnx:teachers/net.onnx")
    options: dict[str, Any] = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "order": "rgb"}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in ONNX_OPTIONS:
            raise TeacherSpecError(f"teacher {spec!r}: unknown option {key!r}; known: {', '.join(ONNX_OPTIONS)}")
        if key == "order":
            if value not in ("rgb", "bgr"):
                raise TeacherSpecError(f"teacher {spec!r}: order must be rgb or bgr, got {value!r}")
            options[key] = value
            continue
        try:
            numbers = tuple(float(v) for v in value.split(","))
        except ValueError:
            numbers = ()
        if len(numbers) == 1:
            numbers = numbers * 3
        if len(numbers) != 3 or (key == "std" and min(numbers) <= 0):
            raise TeacherSpecError(f"teacher {spec!r}: {key} must be one number or three (R,G,B)"
                                   f"{', all positive' if key == 'std' else ''}, got {value!r}")
        options[key] = numbers
    return Path(path_text).expanduser(), options


class OnnxTeacher(Teacher):
    """An ONNX embedding network through onnxruntime: input (N|1, 3, H, W) float, output (N|1, D)."""

    def __init__(self, path: Path, *, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD,
                 order: str = "rgb", device: str = "cpu") -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelAssetError(f"the ONNX teacher {path} needs onnxruntime, which is not installed: "
                                  f"{ONNX_INSTALL}", path=str(path)) from None
        if not path.is_file():
            raise ModelAssetError(f"ONNX teacher {path}: file not found (give onnx:PATH to an existing .onnx file)",
                                  path=str(path))
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:         # onnxruntime raises its own exception types for unreadable models
            raise ModelAssetError(f"ONNX teacher {path}: onnxruntime cannot load it: {' '.join(str(exc).split())[:300]}",
                                  path=str(path)) from exc
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        what = f"ONNX teacher {path}"
        if len(inputs) != 1:
            raise ModelAssetError(f"{what}: expected one input (N, 3, H, W), it has {len(inputs)}: "
                                  f"{[i.name for i in inputs]}", path=str(path))
        shape = list(inputs[0].shape)
        if (len(shape) != 4 or shape[1] != 3 or "float" not in inputs[0].type
                or not all(isinstance(s, int) and s > 0 for s in shape[2:]) or shape[2] != shape[3]):
            raise ModelAssetError(f"{what}: input {inputs[0].name!r} is {inputs[0].type} {shape}; a face-embedding "
                                  "teacher takes float (N, 3, S, S) images (3 colour channels, square, fixed S)",
                                  path=str(path))
        out_shape = list(outputs[0].shape)
        if len(out_shape) != 2 or not isinstance(out_shape[1], int) or out_shape[1] < 2:
            raise ModelAssetError(f"{what}: output {outputs[0].name!r} has shape {out_shape}; a face-embedding "
                                  "teacher returns (N, D) vectors with a fixed D", path=str(path))
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else 0
        if self.fixed_batch not in (0, 1):
            raise ModelAssetError(f"{what}: its batch dimension is fixed at {self.fixed_batch}; export it with "
                                  "batch 1 or a dynamic batch", path=str(path))
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.order = order
        self.config = ModelConfig(name=path.stem, backbone="onnx", embedding_dim=int(out_shape[1]),
                                  input_size=int(shape[2]), mean=tuple(mean), std=tuple(std))  # type: ignore[arg-type]
        file_sha = file_sha256(path)
        sha = file_sha
        for extra in _external_data_files(path):
            sha = hashlib.sha256((sha + file_sha256(extra)).encode()).hexdigest()
        prep = _digest({"mean": list(mean), "std": list(std), "order": order})[:8]
        known = KNOWN_ONNX.get(file_sha)
        base = _teacher_lineage(PRETRAINED[known].lineage) if known in PRETRAINED else {
            "training_data": "unknown (an ONNX file given by path)", "licence": "unknown", "ms1m_ancestry": None}
        lineage = {**base, "kind": "onnx", "name": known or path.stem, "file": str(path), "sha256": file_sha}
        super().__init__(name=known or path.stem, id=f"onnx-{_slug(path.stem)}-{sha[:16]}-{prep}",
                         embedding_dim=int(out_shape[1]), lineage=lineage,
                         batch_size=16 if self.fixed_batch == 1 else 64)
        lineage["teacher_id"] = self.id
        probe = self._run(np.zeros((1, 3, self.config.input_size, self.config.input_size), np.float32))
        if probe.shape != (1, self.embedding_dim):
            raise ModelAssetError(f"{what}: a probe image gave an output of shape {probe.shape}, not (1, "
                                  f"{self.embedding_dim})", path=str(path))

    def _run(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run([self.output_name], {self.input_name: x})[0])

    def _embed(self, crops: np.ndarray) -> np.ndarray:
        x = preprocess(crops, self.config).numpy().astype(np.float32)     # RGB, (x/255 - mean) / std
        if self.order == "bgr":
            x = np.ascontiguousarray(x[:, ::-1])
        if self.fixed_batch == 1:
            return np.concatenate([self._run(x[i:i + 1]) for i in range(len(x))])
        return self._run(x)


def _external_data_files(path: Path) -> list[Path]:
    """Files an ONNX model keeps its weights in beside it (needs the ``onnx`` package; [] without it)."""
    try:
        import onnx
        from onnx.external_data_helper import _get_all_tensors
    except ImportError:
        return []
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:            # unreadable: onnxruntime already accepted it, so identity = the .onnx file
        return []
    found = {entry.value for t in _get_all_tensors(model) for entry in t.external_data if entry.key == "location"}
    return sorted(path.parent / name for name in found if (path.parent / name).is_file())


# ------------------------------------------------------------------------------------------------- dlib
# The 112x112 crop padded by DLIB_PAD of its side (edge-replicated) and upscaled DLIB_SCALE times; dlib's
# 5-point shape predictor runs in DLIB_RECT (the median box dlib's HOG detector returned on such crops of
# 48 CFP photos, in crop pixels), then ``get_face_chip`` cuts its 150x150 chip (padding 0.25). Measured on
# those 48 CFP frontal photos of 12 people (scripts/dlib_teacher_check.py): cosine to dlib's own pipeline on
# the original photo 0.994 on average (min 0.986); genuine-pair cosine 0.956 +- 0.014 vs impostor
# 0.825 +- 0.036, as dlib on the photos (0.957 / 0.823). A plain resize of the crop to 150x150 instead
# agreed only 0.917 and fused the classes (impostor mean 0.917). See docs/training.md.
DLIB_PAD = 0.25
DLIB_SCALE = 2.0
DLIB_RECT = (13.5, 24.0, 106.0, 116.5)
DLIB_FILES = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")
DLIB_LINEAGE = {
    "source": "dlib's dlib_face_recognition_resnet_model_v1 (Davis King), via the face_recognition_models package",
    "licence": "CC0 1.0 / public domain (dlib's model files)",
    "training_data": "about 3 million faces of 7,485 people (FaceScrub, the VGG face dataset and photos scraped "
                     "from the web, per dlib's author); not MS-Celeb-1M",
    "ms1m_ancestry": False,
}


def dlib_model_dir() -> Path:
    """The folder of face_recognition_models' ``.dat`` files; ModelAssetError naming the extra when absent.

    Located without importing the package (its ``__init__`` needs ``pkg_resources``, gone from recent
    setuptools)."""
    missing = [name for name in ("dlib", "face_recognition_models") if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelAssetError(f"the dlib teacher needs the optional packages dlib-bin and face_recognition_models "
                              f"({' and '.join(missing)} not installed): {DLIB_INSTALL}", path="dlib")
    spec = importlib.util.find_spec("face_recognition_models")
    folder = Path(list(spec.submodule_search_locations or [])[0]) / "models"
    for name in DLIB_FILES:
        if not (folder / name).is_file():
            raise ModelAssetError(f"dlib teacher: {folder / name} is missing; reinstall the extra: "
                                  f"{DLIB_INSTALL}", path=str(folder / name))
    return folder


class DlibTeacher(Teacher):
    """dlib's ResNet (128-d), on its own 150x150 chips cut from our aligned crops (constants above)."""

    def __init__(self) -> None:
        folder = dlib_model_dir()
        try:
            import dlib
        except ImportError as exc:      # installed but broken (e.g. a wheel for another CPU)
            raise ModelAssetError(f"the dlib teacher cannot import dlib ({exc}): {DLIB_INSTALL}", path="dlib") from exc
        self.dlib = dlib
        self.predictor = dlib.shape_predictor(str(folder / DLIB_FILES[0]))
        self.net = dlib.face_recognition_model_v1(str(folder / DLIB_FILES[1]))
        sha = file_sha256(folder / DLIB_FILES[1])
        method = _digest({"pad": DLIB_PAD, "scale": DLIB_SCALE, "rect": DLIB_RECT,
                          "predictor": file_sha256(folder / DLIB_FILES[0])})[:8]
        lineage = {**DLIB_LINEAGE, "kind": "dlib", "name": "dlib_resnet_v1", "file": str(folder / DLIB_FILES[1]),
                   "sha256": sha}
        super().__init__(name="dlib_resnet_v1", id=f"dlib-resnet_v1-{sha[:16]}-{method}", embedding_dim=128,
                         lineage=lineage, batch_size=32)
        lineage["teacher_id"] = self.id

    def chip(self, crop_bgr: np.ndarray) -> np.ndarray:
        """dlib's 150x150 RGB chip of one aligned 112x112 BGR crop."""
        if crop_bgr.shape[:2] != (CROP, CROP):
            raise ValueError(f"the dlib teacher expects aligned {CROP}x{CROP} crops, got {crop_bgr.shape}")
        p = int(round(DLIB_PAD * CROP))
        rgb = cv2.cvtColor(np.ascontiguousarray(crop_bgr), cv2.COLOR_BGR2RGB)
        big = cv2.copyMakeBorder(rgb, p, p, p, p, cv2.BORDER_REPLICATE)
        big = cv2.resize(big, None, fx=DLIB_SCALE, fy=DLIB_SCALE, interpolation=cv2.INTER_LINEAR)
        left, top, right, bottom = ((v + p) * DLIB_SCALE for v in DLIB_RECT)
        box = self.dlib.rectangle(int(round(left)), int(round(top)), int(round(right)), int(round(bottom)))
        return self.dlib.get_face_chip(big, self.predictor(big, box), 150, 0.25)

    def _embed(self, crops: np.ndarray) -> np.ndarray:
        chips = [self.chip(c) for c in crops]
        return np.asarray([np.asarray(v) for v in self.net.compute_face_descriptor(chips, 0)], dtype=np.float32)


# ---------------------------------------------------------------------------------------------- resolve
def teacher_choices() -> list[str]:
    """Names offered in the CLI help and the Trainer's combo box (a path or ``onnx:PATH`` works too)."""
    return [*sorted(PRETRAINED), "dlib"]


def resolve_teacher(spec: str, device: str = "cpu") -> Teacher:
    """The teacher ``spec`` names (see the module docstring), loaded and checked.

    ModelAssetError names the file and what to do when it is missing or unusable; TeacherSpecError when the
    spec itself is malformed.
    """
    spec = spec.strip()
    if not spec:
        raise TeacherSpecError("no teacher given: name a pretrained source, a model folder, onnx:PATH or dlib")
    if spec == "dlib":
        return DlibTeacher()
    if spec.startswith("onnx:"):
        path, options = parse_onnx_spec(spec)
        return OnnxTeacher(path, device=device, **options)
    if spec in PRETRAINED or (Path(spec) / CONFIG_FILE).is_file():
        return _torch_teacher(spec, device)
    path = Path(spec)
    if path.suffix.lower() == ".onnx" and path.is_file():
        raise TeacherSpecError(f"teacher {spec!r} is an ONNX file: write onnx:{spec}")
    where = "is a folder without config.json" if path.is_dir() else "does not exist"
    raise ModelAssetError(f"teacher {spec!r} {where}: give a model folder (config.json + weights.pt), a registered "
                          f"pretrained name ({', '.join(sorted(PRETRAINED)) or 'none'}), onnx:PATH or dlib",
                          path=spec)
