"""Embed the main face of many image files: a cancellable Progress generator (``faceapp embed``, GUI).

Each image is decoded, its main face (largest; ties -> most central) detected and aligned, and the crops
are embedded in batches. Images without a usable face, or that cannot be read, are reported in
``failed`` with the reason; they never stop the run. Keys are paths relative to ``root``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from faceapp.core.errors import FaceAppError, InputFileError
from faceapp.core.progress import CancelToken, EtaClock, Job, Progress
from faceapp.services.gallery import EmbedderLike

if TYPE_CHECKING:
    from faceapp.vision.pipeline import FacePipeline


@dataclass
class EmbedFilesResult:
    """Embeddings of the images whose main face was found, and the others with reasons."""

    keys: list[str]
    embeddings: np.ndarray                                   # (N, dim) float32, unit rows, aligned with keys
    failed: list[tuple[str, str]] = field(default_factory=list)   # (key, reason)
    several_faces: list[str] = field(default_factory=list)   # keys where the largest of several faces was used
    unreadable: list[str] = field(default_factory=list)      # keys of files that could not be read (also in failed)
    model_id: str = ""
    cancelled: bool = False

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts and lists (no vectors)."""
        return {"embedded": len(self.keys), "failed": [{"key": k, "reason": r} for k, r in self.failed],
                "several_faces": self.several_faces, "model_id": self.model_id,
                "dim": int(self.embeddings.shape[1]) if self.embeddings.ndim == 2 else 0,
                "cancelled": self.cancelled}


def common_root(paths: Sequence[Path]) -> Path:
    """The deepest folder holding every path (a folder given alone is its own root)."""
    if not paths:
        return Path.cwd()
    resolved = [p.resolve() for p in paths]
    if len(resolved) == 1:
        return resolved[0] if resolved[0].is_dir() else resolved[0].parent
    return Path(os.path.commonpath([str(p if p.is_dir() else p.parent) for p in resolved]))


def relative_key(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with forward slashes (the absolute path when outside root)."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def embed_files(files: Sequence[Path], root: Path, pipeline: "FacePipeline", embedder: EmbedderLike, *,
                batch_size: int = 64, cancel: CancelToken | None = None) -> Job[EmbedFilesResult]:
    """Embed the main face of each file; yields Progress per image, returns EmbedFilesResult.

    Cancelling stops after the current image; what was embedded so far is returned with ``cancelled``.
    """
    from faceapp.capture.images import read_image
    from faceapp.vision.pipeline import primary_face_index

    cancel = cancel or CancelToken()
    total = len(files)
    clock = EtaClock(total)
    keys: list[str] = []
    vectors: list[np.ndarray] = []
    pending: list[tuple[str, np.ndarray]] = []
    result = EmbedFilesResult(keys=keys, embeddings=np.zeros((0, embedder.dim), np.float32), model_id=embedder.model_id)

    def flush() -> None:
        if pending:
            vectors.append(embedder.embed([crop for _, crop in pending], batch_size=batch_size))
            keys.extend(key for key, _ in pending)
            pending.clear()

    yield Progress("embed", 0, total, message=f"{total} images")
    for done, path in enumerate(files, start=1):
        if cancel.cancelled:
            result.cancelled = True
            break
        key = relative_key(path, root)
        try:
            image = read_image(path)
            aligned = pipeline.process(image)
        except FaceAppError as error:
            result.failed.append((key, str(error)))
            if isinstance(error, InputFileError):
                result.unreadable.append(key)
        else:
            main = primary_face_index([a.face for a in aligned], image.shape)
            if main is None:
                result.failed.append((key, "no face found"))
            else:
                if len(aligned) > 1:
                    result.several_faces.append(key)
                pending.append((key, aligned[main].image))
                if len(pending) >= batch_size:
                    flush()
        yield Progress("embed", done, total, eta_s=clock.eta(done),
                       metrics={"embedded": len(keys) + len(pending), "failed": len(result.failed)})
    flush()
    if vectors:
        result.embeddings = np.concatenate(vectors).astype(np.float32)
    return result
