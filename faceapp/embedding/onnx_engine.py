"""Run an embedding network through onnxruntime on the CPU: the Embedder's fast path.

Why: at batch 1 on a small CPU, eager PyTorch spends much of a MobileFaceNet's forward pass in per-operator
dispatch, and its OpenMP threads spin-wait badly when other processes share the cores (the live loop next to
the GUI, a training run): on this 2-core machine the shipped model took ~7 ms per face quiet and 60-300 ms
under load, onnxruntime ~5 ms under the same load. The network is exported once per weights (BatchNorm
already folded) into the user cache folder and checked against the torch network on a probe batch before
it is used; any failure (export, load, a mismatch) leaves the Embedder on torch with a warning.

``engine`` choices: ``auto`` (on the CPU: the model folder's int8 network when it ships one, see
faceapp.embedding.int8, else onnxruntime when installed; torch otherwise and on CUDA), ``torch``,
``onnxruntime`` (fp32, required: an error when it cannot run), ``onnxruntime-int8`` (the folder's int8 network,
required; other onnxruntime users such as the PAD models read it as ``onnxruntime``).
``$FACEAPP_EMBED_ENGINE`` sets the default.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from faceapp.core.errors import IncompatibleError
from faceapp.core.files import atomic_write
from faceapp.core.paths import cache_dir
from faceapp.matching.index import normalize_rows
from faceapp.core.engines import ENGINES, ENV_ENGINE

EXPORT_VERSION = 2              # bump when the export recipe changes: old cache files are then ignored
# Backbones that ``auto`` keeps on torch: their PReLU layers run slower in onnxruntime's CPU kernels than in
# torch (measured: models/clean, MobileFaceNet with PReLU, 14.2 ms vs 8.9 ms at batch 1 on this 2-core machine,
# `faceapp bench --stages embed-b1,embed-b1-torch --model models/clean`; the ReLU6 variant of models/default
# runs 5.9 vs 8.3 ms). ``engine="onnxruntime"`` still runs them there.
AUTO_TORCH_BACKBONES = frozenset({"mobilefacenet"})
PROBE_TOLERANCE = 1e-3          # max |cos| difference between torch and onnxruntime on the probe batch

log = logging.getLogger(__name__)


def requested_engine(engine: str | None) -> str:
    """The engine asked for: ``engine``, else ``$FACEAPP_EMBED_ENGINE``, else "auto" (validated, lower case)."""
    name = (engine or os.environ.get(ENV_ENGINE, "") or "auto").strip().lower()
    if name not in ENGINES:
        raise IncompatibleError(f"embedding engine {name!r} is not one of {', '.join(ENGINES)} "
                                f"(option --engine or ${ENV_ENGINE})")
    return name


def resolve_engine(requested: str, device: str, backbone: str | None = None) -> str:
    """The engine to try for a requested one: "torch" or "onnxruntime" (``auto`` -> onnxruntime on the CPU when
    it is installed, unless ``backbone`` is one it runs slower: AUTO_TORCH_BACKBONES); onnxruntime asked for on
    CUDA raises IncompatibleError."""
    name = requested_engine(requested)
    if name == "onnxruntime-int8":
        name = "onnxruntime"            # the fp32 network: int8 needs a model folder's file (Embedder decides)
    if name == "torch" or (name == "auto" and backbone in AUTO_TORCH_BACKBONES):
        return "torch"
    if not device.startswith("cpu"):
        if name == "onnxruntime":
            raise IncompatibleError(f"the onnxruntime engine runs on the CPU only; device is {device}")
        return "torch"
    if name == "onnxruntime" or onnxruntime_available():
        return "onnxruntime"
    return "torch"


def onnxruntime_available() -> bool:
    """True when ``import onnxruntime`` works."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_key(weights_sha: str, config: Any) -> str:
    """Cache key of one exported network: its weights, structure, input size, torch and the export recipe."""
    fields = {"weights": weights_sha, "backbone": config.backbone, "kwargs": dict(config.backbone_kwargs or {}),
              "dim": int(config.embedding_dim), "size": int(config.input_size), "torch": torch.__version__,
              "export": EXPORT_VERSION}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:24]


class _SplitPReLU(nn.Module):
    """PReLU as ``relu(x) - a * relu(-x)``: the same function, which onnxruntime's CPU kernels run about a fifth
    faster than its PRelu operator (MobileFaceNet with PReLU: 10.6 -> 8.3 ms at batch 1 here)."""

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        weight = prelu.weight.detach().clone()
        self.register_buffer("slope", weight.view(1, -1, 1, 1) if weight.numel() > 1 else weight.view(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slope = self.slope if x.dim() == 4 or self.slope.numel() == 1 else self.slope.view(1, -1)
        return torch.relu(x) - slope * torch.relu(-x)


def onnx_friendly(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with its PReLU layers written in operators onnxruntime runs faster (same outputs)."""
    import copy

    copied = copy.deepcopy(net)

    def swap(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, nn.PReLU):
                setattr(module, name, _SplitPReLU(child))
            else:
                swap(child)

    swap(copied)
    return copied


def export_onnx(net: nn.Module, input_size: int) -> bytes:
    """The ONNX bytes of ``net`` (eval mode, CPU, fp32, PReLU split: ``onnx_friendly``) with a dynamic batch
    dimension."""
    net = onnx_friendly(net.eval()).to(memory_format=torch.contiguous_format)
    probe = torch.zeros(1, 3, input_size, input_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")            # the TorchScript exporter's deprecation notice
        torch.onnx.export(net, (probe,), buffer, input_names=["crops"], output_names=["embeddings"],
                          dynamic_axes={"crops": {0: "batch"}, "embeddings": {0: "batch"}}, dynamo=False)
    return buffer.getvalue()


class OnnxRunner:
    """An onnxruntime session of one exported embedding network (CPU, no spin-waiting threads)."""

    def __init__(self, model: bytes | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = max(1, int(threads or torch.get_num_threads()))
        options.inter_op_num_threads = 1
        # Spinning threads win a few percent on an idle machine and lose 2-5x when the cores are shared
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = str(model) if isinstance(model, Path) else model
        self.session = ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) float32 network input -> (N, D) float32 raw embeddings."""
        return np.asarray(self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(x)})[0],
                          dtype=np.float32)


def build_runner(net: nn.Module, config: Any, weights_sha: str, *, required: bool = False,
                 threads: int | None = None) -> OnnxRunner | None:
    """An OnnxRunner for ``net`` (an inference-ready CPU copy: BN folded), exported once into the cache folder
    and checked against ``net`` on a probe batch; None (with a warning) when that fails and not ``required``.
    ``threads``: intra-op threads (None: torch's count)."""
    path = cache_dir() / "onnx" / f"{config.backbone}-{export_key(weights_sha, config)}.onnx"
    try:
        runner = _cached_runner(net, config, path, threads)
        _check_agreement(net, runner, int(config.input_size))
        return runner
    except Exception as exc:                            # export, onnxruntime and agreement errors alike
        message = f"onnxruntime engine unavailable for {config.name} ({config.backbone}): {exc}"
        if required:
            raise IncompatibleError(message) from exc
        log.warning("%s; using torch", message)
        return None


def _cached_runner(net: nn.Module, config: Any, path: Path, threads: int | None = None) -> OnnxRunner:
    """Load the cached export, re-exporting once when it is missing or unreadable."""
    if path.is_file():
        try:
            return OnnxRunner(path, threads)
        except Exception:                               # a truncated or foreign file: export again below
            path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, export_onnx(net, int(config.input_size)))
    return OnnxRunner(path, threads)


def _check_agreement(net: nn.Module, runner: OnnxRunner, input_size: int) -> None:
    """Raise when onnxruntime and torch disagree on a seeded probe batch (cosine of the raw outputs)."""
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(2, 3, input_size, input_size, generator=generator)
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(net(probe).float(), dim=1).numpy()
    got = normalize_rows(runner.run(probe.numpy()))
    diff = float(np.abs(expected - got).max())
    if not np.isfinite(diff) or diff > PROBE_TOLERANCE:
        raise RuntimeError(f"the exported network differs from torch on a probe batch (max diff {diff:.2e})")
