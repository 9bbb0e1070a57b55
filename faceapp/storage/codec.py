"""Bytes <-> arrays for the store: float32 embeddings and PNG face crops (OpenCV, no torch)."""

from __future__ import annotations

import numpy as np

from faceapp.core.errors import IncompatibleError, InputFileError


def encode_embedding(vector: np.ndarray) -> bytes:
    """A 1-D embedding as little-endian float32 bytes."""
    array = np.asarray(vector)
    if array.ndim != 1 or array.size == 0:
        raise IncompatibleError(f"an embedding must be a non-empty 1-D vector, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise IncompatibleError("an embedding contains NaN or infinite values")
    return array.astype("<f4", copy=False).tobytes()


def decode_embedding(data: bytes, dim: int) -> np.ndarray:
    """float32 vector of ``dim`` values from bytes; IncompatibleError when the length does not match."""
    if len(data) != 4 * dim:
        raise IncompatibleError(f"stored embedding has {len(data)} bytes, expected {4 * dim} for dimension {dim}")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def decode_embeddings(blobs: list[bytes], dim: int) -> np.ndarray:
    """(N, dim) float32 matrix from N blobs of ``4 * dim`` bytes each (checked by the caller)."""
    if not blobs:
        return np.empty((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim).astype(np.float32)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a BGR (or grey) uint8 image."""
    import cv2

    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise InputFileError(f"a face crop must be a uint8 HxW or HxWx3 image, got {array.dtype} {array.shape}")
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise InputFileError("could not encode the face crop as PNG")
    return buffer.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    """BGR uint8 image from PNG bytes."""
    import cv2

    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputFileError("a stored face crop is not a readable PNG")
    return image
