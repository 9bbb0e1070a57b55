"""The teacher-embedding cache: computed once, reused (counted calls), recomputed for another teacher, a
changed crop or another augmentation seed, cancel-safe (whole shards only) and resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceapp.core.errors import CancelledError
from faceapp.core.progress import CancelToken, Progress, run_to_completion
from faceapp.training.config import AugmentConfig
from faceapp.training.teacher_cache import MAX_SHARDS, TeacherCache, crop_key, teacher_embeddings
from faceapp.training.teachers import Teacher


class CountingTeacher(Teacher):
    """A deterministic stand-in teacher (a fixed random projection of the pixels) that counts what it embeds."""

    def __init__(self, tid: str = "counting-0123456789abcdef", dim: int = 8, batch_size: int = 4) -> None:
        super().__init__(name="counting", id=tid, embedding_dim=dim, lineage={"sha256": tid}, batch_size=batch_size)
        self.projection = np.random.default_rng(0).normal(size=(16, dim))
        self.embedded = 0

    def _embed(self, crops: np.ndarray) -> np.ndarray:
        self.embedded += len(crops)
        small = crops[:, ::28, ::28, 0].reshape(len(crops), -1).astype(np.float64) / 255.0      # 4x4 pixels
        return small @ self.projection


def _crops(n: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 112, 112, 3), dtype=np.uint8)


def _run(teacher: Teacher, crops: np.ndarray, root: Path, **kwargs) -> tuple[np.ndarray, list[Progress]]:
    events: list[Progress] = []
    return run_to_completion(teacher_embeddings(teacher, crops, cache_root=root, **kwargs), events.append), events


def test_computed_once_then_reused(tmp_path: Path) -> None:
    crops = _crops()
    teacher = CountingTeacher()
    first, events = _run(teacher, crops, tmp_path)
    assert teacher.embedded == 10
    assert first.shape == (10, 8) and np.allclose(np.linalg.norm(first, axis=1), 1.0)
    assert all(e.stage == "teacher" for e in events) and events[-1].done == events[-1].total == 10
    again, events = _run(teacher, crops, tmp_path)
    assert teacher.embedded == 10                                     # nothing computed the second time
    assert np.array_equal(first, again) and "10 of 10 crops cached" in events[1].message
    assert np.allclose(first, teacher.embed(crops), atol=1e-6)        # the cached vectors are the teacher's


def test_another_teacher_or_a_changed_crop_recomputes(tmp_path: Path) -> None:
    crops = _crops()
    _run(CountingTeacher(), crops, tmp_path)
    other = CountingTeacher(tid="counting-fedcba9876543210")            # e.g. another weight file's SHA-256
    _run(other, crops, tmp_path)
    assert other.embedded == 10
    changed = crops.copy()
    changed[3, 50, 50, 1] ^= 0xFF                                      # one pixel of one crop
    same = CountingTeacher()
    out, _ = _run(same, changed, tmp_path)
    assert same.embedded == 1                                          # only the changed crop
    assert crop_key(changed[3]) != crop_key(crops[3])
    duplicated = np.concatenate([crops[:4], crops[:4]])
    fresh = CountingTeacher(tid="counting-new")
    out, _ = _run(fresh, duplicated, tmp_path)
    assert fresh.embedded == 4 and np.array_equal(out[:4], out[4:])    # identical pixels: embedded once


def test_augmentation_seeds_are_cached_apart(tmp_path: Path) -> None:
    crops = _crops(6)
    teacher = CountingTeacher()
    clean, _ = _run(teacher, crops, tmp_path)
    augment = AugmentConfig(flip=0.0, affine=1.0, color=1.0)
    seeded, _ = _run(teacher, crops, tmp_path, seed=1, augment=augment)
    assert teacher.embedded == 12 and not np.allclose(clean, seeded)
    again, _ = _run(teacher, crops, tmp_path, seed=1, augment=augment)
    assert teacher.embedded == 12 and np.array_equal(seeded, again)   # reproducible: same seed, same images
    other, _ = _run(teacher, crops, tmp_path, seed=2, augment=augment)
    assert teacher.embedded == 18 and not np.allclose(other, seeded)
    folders = sorted(p.name for p in next(tmp_path.iterdir()).iterdir() if p.is_dir())
    assert folders[0].startswith("aug-1-") and folders[1].startswith("aug-2-") and folders[2] == "clean"


def test_cancel_keeps_whole_shards_and_resumes(tmp_path: Path) -> None:
    crops = _crops(12)
    teacher = CountingTeacher(batch_size=4)
    cancel = CancelToken()
    job = teacher_embeddings(teacher, crops, cache_root=tmp_path, cancel=cancel, flush_every=4)
    with pytest.raises(CancelledError, match="run again to resume"):
        for event in job:
            if event.done >= 4 and event.message == "counting":     # after the first batch
                cancel.cancel()
    assert teacher.embedded == 4
    cache = TeacherCache(teacher, root=tmp_path)
    assert len(cache.stored()) == 4
    leftovers = [p.name for p in cache.folder.iterdir() if not p.name.startswith("part-")]
    assert leftovers == []                                            # no temporary or half-written file
    resumed = CountingTeacher(batch_size=4)
    out, _ = _run(resumed, crops, tmp_path)
    assert resumed.embedded == 8 and np.allclose(out, teacher.embed(crops), atol=1e-6)


def test_many_shards_are_merged_and_foreign_shards_ignored(tmp_path: Path) -> None:
    crops = _crops(MAX_SHARDS + 3)
    teacher = CountingTeacher(batch_size=1)
    expected, _ = _run(teacher, crops, tmp_path, flush_every=1)           # one shard per crop
    cache = TeacherCache(teacher, root=tmp_path)
    assert len(cache.shards()) == MAX_SHARDS + 3
    (cache.folder / "part-garbage.npz").write_bytes(b"not a zip")
    assert len(cache.stored()) == MAX_SHARDS + 3
    reopened = TeacherCache(teacher, root=tmp_path)
    assert len(reopened.shards()) == 1 and len(reopened.stored()) == MAX_SHARDS + 3
    counting = CountingTeacher(batch_size=1)
    out, _ = _run(counting, crops, tmp_path)
    assert counting.embedded == 0 and np.array_equal(out, expected)
