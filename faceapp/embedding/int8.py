"""An int8 copy of a model folder's network for onnxruntime: the CPU engine that meets the 5 ms budget.

Why: on a small CPU with VNNI the int8 MobileFaceNet runs its forward pass in about 60 % of fp32's time
(models/default: 2.6 vs 4.6 ms at batch 1 on the 2-core development machine) with embeddings that agree with
fp32's to a cosine of ~0.99 on real faces. Quantisation needs real faces to fix the activation ranges, so the
int8 file is made once, by ``quantize_folder`` (``faceapp quantize``), from aligned crops of a named dataset,
and kept in the model folder beside ``weights.pt`` as ``embed_int8.onnx``; the card's ``int8`` entry records the
file's SHA-256, the weights it was made from, the calibration data and the measured agreement with fp32.

Recipe: the BN-folded network exported as the fp32 engine does (``onnx_engine.export_onnx``), onnxruntime's
static quantisation in QDQ form: per-channel int8 weights, uint8 activations, percentile calibration (the
ranges that agreed best with fp32 among min-max, entropy and percentile here).

At load (``int8_runner``) the file must exist, hash to the card's SHA-256 and come from these weights; anything
else is an ``IncompatibleError`` naming the file and the command that remakes it (the Embedder then stays on
the fp32 engines unless int8 was required).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.core.errors import IncompatibleError
from faceapp.core.files import atomic_write
from faceapp.matching.index import normalize_rows

INT8_FILE = "embed_int8.onnx"
CARD_KEY = "int8"
CALIBRATION_METHOD = "percentile"
REMAKE_HINT = "remake it with: faceapp quantize --model {folder} --data DATASET_FOLDER"


def int8_entry(card: dict[str, Any]) -> dict[str, Any] | None:
    """The card's int8 record (None when the folder has no int8 network)."""
    entry = card.get(CARD_KEY)
    return entry if isinstance(entry, dict) and entry.get("file") else None


def int8_runner(folder: str | Path, card: dict[str, Any], weights_sha: str, threads: int | None = None) -> Any:
    """An ``OnnxRunner`` of the folder's int8 network after checking it is the one the card describes and was
    made from these weights; IncompatibleError naming the file and what to do otherwise."""
    from faceapp.embedding.onnx_engine import OnnxRunner

    entry = int8_entry(card)
    hint = REMAKE_HINT.format(folder=folder)
    if entry is None:
        raise IncompatibleError(f"{folder} has no int8 network (its card records none); {hint}", path=str(folder))
    path = Path(folder) / str(entry["file"])
    if not path.is_file():
        raise IncompatibleError(f"{path}: int8 network missing; {hint}", path=str(path))
    if entry.get("weights_sha256") != weights_sha:
        raise IncompatibleError(f"{path} was made from other weights (sha256 {str(entry.get('weights_sha256'))[:12]}, "
                                f"the folder's are {weights_sha[:12]}); {hint}", path=str(path))
    network = path.read_bytes()                     # read once: hashed, then handed to onnxruntime as is
    if hashlib.sha256(network).hexdigest() != entry.get("sha256"):
        raise IncompatibleError(f"{path} does not match its model card's SHA-256 (changed or damaged); {hint}",
                                path=str(path))
    try:
        return OnnxRunner(network, threads)
    except Exception as error:                      # onnxruntime cannot load it
        raise IncompatibleError(f"{path}: onnxruntime cannot load it ({error}); {hint}", path=str(path)) from error


def quantize_network(fp32_onnx: bytes, calibration: np.ndarray, *, method: str = CALIBRATION_METHOD,
                     batch: int = 32) -> bytes:
    """The int8 (QDQ) ONNX bytes of an fp32 network, its activation ranges calibrated on ``calibration`` (N, 3,
    S, S) float32 network inputs (preprocessed real face crops)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise ValueError(f"calibration method {method!r} is not one of {', '.join(methods)}")

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"crops": calibration[i:i + batch]} for i in range(0, len(calibration), batch)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(prefix="faceapp-int8-") as tmp, \
            contextlib.redirect_stdout(io.StringIO()):        # the calibrator prints its histogram settings
        source, prepared, target = Path(tmp) / "fp32.onnx", Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(fp32_onnx)
        quant_pre_process(str(source), str(prepared))
        quantize_static(str(prepared), str(target), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=methods[method],
                        # ranges folded in every few batches: holding every activation of 512 crops needs >20 GB
                        extra_options={"ActivationSymmetric": False, "CalibMaxIntermediateOutputs": 4})
        return target.read_bytes()


def agreement(fp32: Any, int8: Any, inputs: np.ndarray) -> dict[str, float]:
    """Cosine between the fp32 and int8 embeddings of the same inputs: min, 1st percentile and mean."""
    cos = (normalize_rows(fp32.run(inputs)) * normalize_rows(int8.run(inputs))).sum(axis=1)
    return {"min_cos": round(float(cos.min()), 4), "p01_cos": round(float(np.percentile(cos, 1)), 4),
            "mean_cos": round(float(cos.mean()), 4), "crops": int(len(cos))}


def quantize_folder(folder: str | Path, crops: np.ndarray, *, source: str, check_crops: np.ndarray | None = None,
                    method: str = CALIBRATION_METHOD, min_mean_cos: float = 0.97) -> dict[str, Any]:
    """Write ``folder/embed_int8.onnx`` calibrated on ``crops`` (aligned BGR uint8 face crops, named ``source`` in
    the card) and record it in the card; the agreement with fp32 is measured on ``check_crops`` (other crops;
    default: the calibration ones). Refuses (IncompatibleError, nothing written) when the mean cosine to fp32
    falls below ``min_mean_cos``. Returns the card's int8 entry."""
    import onnxruntime

    from faceapp.embedding.embedder import Embedder
    from faceapp.embedding.model_folder import preprocess, read_card, write_card
    from faceapp.embedding.onnx_engine import OnnxRunner, export_onnx

    folder = Path(folder)
    if len(crops) < 16:
        raise ValueError(f"int8 calibration needs at least 16 face crops, got {len(crops)}")
    embedder = Embedder.load(folder, device="cpu", engine="torch")
    size = int(embedder.config.input_size)
    fp32_bytes = export_onnx(embedder.net, size)
    calibration = preprocess(list(crops), embedder.config).numpy()
    int8_bytes = quantize_network(fp32_bytes, calibration, method=method)
    check = calibration if check_crops is None else preprocess(list(check_crops), embedder.config).numpy()
    agreed = agreement(OnnxRunner(fp32_bytes, 1), OnnxRunner(int8_bytes, 1), check)
    if agreed["mean_cos"] < min_mean_cos:
        raise IncompatibleError(f"the int8 network of {folder} agrees with fp32 only to a mean cosine of "
                                f"{agreed['mean_cos']} (< {min_mean_cos}); not written", path=str(folder))
    path = folder / INT8_FILE
    atomic_write(path, int8_bytes)
    entry = {"file": INT8_FILE, "sha256": hashlib.sha256(int8_bytes).hexdigest(),
             "weights_sha256": embedder.weights_sha256, "bytes": len(int8_bytes),
             "format": "ONNX QDQ: per-channel int8 weights, uint8 activations (onnxruntime static quantisation)",
             "calibration": {"data": source, "crops": int(len(crops)), "method": method},
             "agreement_with_fp32": {"data": source if check_crops is None else f"{source} (crops not calibrated on)",
                                     **agreed},
             "onnxruntime": onnxruntime.__version__,
             "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    card = read_card(folder)
    previous = card.get(CARD_KEY)
    if isinstance(previous, dict) and isinstance(previous.get("metrics"), dict) \
            and previous.get("sha256") == entry["sha256"]:
        entry["metrics"] = previous["metrics"]           # the same file: its measured accuracy still holds
    card[CARD_KEY] = entry                               # replaced whole: nothing of an older file survives
    write_card(folder, card)
    return entry
