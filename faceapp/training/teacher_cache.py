"""The teacher-embedding cache: each crop embedded by a teacher once, reused by every later run.

Folder ``<cache>/teachers/<teacher id>/<variant>/`` where the teacher id includes its weight file's SHA-256
(another file, or other preprocessing, is another folder) and the variant is ``clean`` (the un-augmented
crop) or ``aug-<seed>-<augmentation settings hash>``. Inside, ``part-*.npz`` shards hold ``keys`` (the
image key of each crop: SHA-256 of its pixels, so a changed crop is a new key and is embedded again) and
``emb`` (float32 unit vectors). Each shard is written to a temporary file and renamed, so a cancelled or
killed run leaves only whole shards: what was done before is kept, the rest is computed next time.
Many shards are merged into one when the cache is opened.

``teacher_embeddings`` is a generator of ``Progress("teacher", done, total)`` honouring a ``CancelToken``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from faceapp.core.errors import CancelledError
from faceapp.core.files import atomic_write
from faceapp.core.paths import cache_dir
from faceapp.core.progress import CancelToken, EtaClock, Job, Progress
from faceapp.training.augment import Augmenter
from faceapp.training.config import AugmentConfig
from faceapp.training.teachers import Teacher

KEY_CHARS = 32               # hex characters of the image key (128 bits)
FLUSH_EVERY = 2048           # images embedded between two shards
MAX_SHARDS = 8               # more shards than this are merged when the cache is opened
HASH_CHUNK = 512


class CropSource(Protocol):
    """What crops are read from: ``len()`` rows, ``crops(idx) -> (len(idx), 112, 112, 3) uint8``
    (``faceapp.data.labelled.CropTable``; plain arrays are wrapped by ``ArrayCrops``)."""

    def __len__(self) -> int: ...

    def crops(self, idx: np.ndarray) -> np.ndarray: ...


class ArrayCrops:
    """An (N, 112, 112, 3) uint8 array as a ``CropSource``."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.asarray(array)

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def crops(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.array[np.asarray(idx, dtype=np.int64)])


def crop_key(crop: np.ndarray) -> str:
    """The image key of one crop: SHA-256 of its shape and pixels (hex, ``KEY_CHARS`` characters)."""
    arr = np.ascontiguousarray(crop)
    digest = hashlib.sha256(str(arr.shape).encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()[:KEY_CHARS]


def crop_keys(source: CropSource) -> list[str]:
    """The image key of every row, reading the crops in chunks."""
    keys: list[str] = []
    for start in range(0, len(source), HASH_CHUNK):
        batch = source.crops(np.arange(start, min(start + HASH_CHUNK, len(source))))
        keys.extend(crop_key(c) for c in batch)
    return keys


def variant_name(seed: int | None, augment: AugmentConfig | None = None) -> str:
    """``clean`` for un-augmented crops, else ``aug-<seed>-<hash of the augmentation settings>``."""
    if seed is None:
        return "clean"
    settings = json.dumps(asdict(augment or AugmentConfig()), sort_keys=True)
    return f"aug-{int(seed)}-{hashlib.sha256(settings.encode()).hexdigest()[:8]}"


def default_cache_root() -> Path:
    return cache_dir() / "teachers"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "teacher"


class TeacherCache:
    """The stored embeddings of one teacher and variant: ``lookup`` what exists, ``add`` a shard."""

    def __init__(self, teacher: Teacher, *, variant: str = "clean", root: Path | None = None) -> None:
        self.teacher_id = teacher.id
        self.dim = teacher.embedding_dim
        self.base = Path(root or default_cache_root()) / _safe(teacher.id)
        self.folder = self.base / variant
        self._stored: dict[str, np.ndarray] | None = None
        self._info = {"teacher_id": teacher.id, "name": teacher.name, "embedding_dim": teacher.embedding_dim,
                      "lineage": teacher.lineage}

    def shards(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.npz")) if self.folder.is_dir() else []

    def stored(self) -> dict[str, np.ndarray]:
        """key -> embedding of everything on disk (read once; unreadable or foreign shards are ignored)."""
        if self._stored is None:
            self._stored = {}
            shards = self.shards()
            for shard in shards:
                for key, vector in zip(*self._read(shard)):
                    self._stored[key] = vector
            if len(shards) > MAX_SHARDS and self._stored:
                self._merge(shards)
        return self._stored

    def _read(self, shard: Path) -> tuple[list[str], np.ndarray]:
        try:
            with np.load(shard, allow_pickle=False) as data:
                keys, emb = data["keys"], data["emb"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return [], np.zeros((0, self.dim), np.float32)
        if emb.ndim != 2 or emb.shape != (len(keys), self.dim):
            return [], np.zeros((0, self.dim), np.float32)
        return [str(k) for k in keys], emb.astype(np.float32, copy=False)

    def _merge(self, shards: list[Path]) -> None:
        """Replace ``shards`` by one holding everything read (the new one is renamed in before any is removed)."""
        keys = list(self._stored or {})
        self._write(keys, np.stack([self._stored[k] for k in keys]))   # type: ignore[index]
        for shard in shards:
            shard.unlink(missing_ok=True)

    def add(self, keys: list[str], emb: np.ndarray) -> None:
        """Store ``emb`` rows under ``keys`` as one new shard (atomically)."""
        if not keys:
            return
        emb = np.asarray(emb, dtype=np.float32)
        self._write(keys, emb)
        stored = self.stored()
        for key, vector in zip(keys, emb):
            stored[key] = vector

    def _write(self, keys: list[str], emb: np.ndarray) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        info = self.base / "teacher.json"
        if not info.is_file():
            atomic_write(info, (json.dumps(self._info, indent=2, default=str) + "\n").encode())
        path = self.folder / f"part-{uuid.uuid4().hex}.npz"
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.asarray(keys, dtype=f"<U{KEY_CHARS}"), emb=emb)
        atomic_write(path, buffer.getvalue())
        return path


def _augment_one(augmenter: Augmenter, crop: np.ndarray, seed: int, key: str) -> np.ndarray:
    """The crop augmented reproducibly: the generator is seeded by (seed, image key)."""
    rng = np.random.default_rng([int(seed), int(key[:15], 16)])
    return augmenter(crop[None], rng)[0]


def teacher_embeddings(teacher: Teacher, source: CropSource | np.ndarray, *, seed: int | None = None,
                       augment: AugmentConfig | None = None, cache_root: Path | None = None,
                       cancel: CancelToken | None = None, flush_every: int = FLUSH_EVERY) -> Job[np.ndarray]:
    """(len(source), D) float32 teacher embeddings of every crop, from the cache where it has them.

    ``seed`` None embeds the clean crops; an integer embeds each crop augmented by ``augment`` with a
    generator seeded by (seed, image key), cached separately. Crops with the same pixels are embedded once.
    Yields ``Progress("teacher", done, total)`` while embedding; cancelled, it stores what is done (whole
    shards only) and raises ``CancelledError``; the next call resumes from there.
    """
    if isinstance(source, np.ndarray):
        source = ArrayCrops(source)
    n = len(source)
    cache = TeacherCache(teacher, variant=variant_name(seed, augment), root=cache_root)
    yield Progress("teacher", 0, n, message=f"{teacher.name}: reading the teacher cache")
    keys = crop_keys(source)
    stored = cache.stored()
    todo_keys: dict[str, int] = {}             # each missing key once, with the first row holding it
    for row, key in enumerate(keys):
        if key not in stored and key not in todo_keys:
            todo_keys[key] = row
    todo = list(todo_keys.items())
    cached = n - sum(1 for k in keys if k in todo_keys)
    yield Progress("teacher", cached, n, message=f"{teacher.name}: {cached} of {n} crops cached, embedding "
                   f"{len(todo)}", metrics={"cached": cached, "to_embed": len(todo)})
    augmenter = Augmenter(augment or AugmentConfig()) if seed is not None else None
    clock = EtaClock(len(todo))
    pending_keys: list[str] = []
    pending: list[np.ndarray] = []
    done = 0
    try:
        for start in range(0, len(todo), teacher.batch_size):
            if cancel is not None and cancel.cancelled:
                raise CancelledError(f"teacher embeddings cancelled after {done} of {len(todo)} crops; run again "
                                     "to resume")
            part = todo[start:start + teacher.batch_size]
            batch = source.crops(np.asarray([row for _, row in part], dtype=np.int64))
            if augmenter is not None:
                batch = np.stack([_augment_one(augmenter, c, seed, k) for c, (k, _) in zip(batch, part)])  # type: ignore[arg-type]
            pending.append(teacher.embed(batch))
            pending_keys.extend(k for k, _ in part)
            done += len(part)
            if len(pending_keys) >= flush_every:
                cache.add(pending_keys, np.concatenate(pending))
                pending_keys, pending = [], []
            yield Progress("teacher", cached + done, n, eta_s=clock.eta(done), message=teacher.name,
                           metrics={"images/s": round(clock.rate(done), 1)})
    finally:
        if pending_keys:
            cache.add(pending_keys, np.concatenate(pending))
    stored = cache.stored()
    out = np.empty((n, teacher.embedding_dim), dtype=np.float32)
    for row, key in enumerate(keys):
        out[row] = stored[key]
    return out


def cache_summary(teacher: Teacher, *, seed: int | None = None, augment: AugmentConfig | None = None,
                  cache_root: Path | None = None) -> dict[str, Any]:
    """Where a teacher's cache is and how many crops it holds (for logs and the docs' examples)."""
    cache = TeacherCache(teacher, variant=variant_name(seed, augment), root=cache_root)
    return {"folder": str(cache.folder), "shards": len(cache.shards()), "crops": len(cache.stored())}
