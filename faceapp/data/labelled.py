"""Training data assembled from one or more aligned datasets: labels over namespaced identities, an
identity-disjoint validation hold-out, and fast batch gathering from the crop memmaps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from faceapp.core.errors import DatasetError
from faceapp.data.cache import AlignedSet


@dataclass
class CropTable:
    """Rows of several aligned sets addressed by one index: ``crops(idx)`` gathers a batch."""

    sets: list[AlignedSet]
    where: np.ndarray                    # (M, 2) int: set number, row in that set

    def __len__(self) -> int:
        return int(self.where.shape[0])

    def crops(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), 112, 112, 3) uint8 crops, in the order of ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((idx.size, 112, 112, 3), dtype=np.uint8)
        where = self.where[idx]
        for s in np.unique(where[:, 0]):
            mask = where[:, 0] == s
            rows = where[mask, 1]
            order = np.argsort(rows, kind="stable")       # memmap reads in file order
            out[np.flatnonzero(mask)[order]] = self.sets[int(s)].crops[rows[order]]
        return out


@dataclass
class LabelledCrops:
    """Crops with integer labels and the identity name of each label."""

    table: CropTable
    labels: np.ndarray
    identities: list[str]
    per_dataset: dict[str, dict[str, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def num_classes(self) -> int:
        return len(self.identities)

    def subset(self, keep: np.ndarray) -> "LabelledCrops":
        """The rows in ``keep`` (bool mask), labels renumbered 0..C-1 in identity order."""
        used = np.unique(self.labels[keep])
        remap = np.full(self.num_classes, -1, dtype=np.int64)
        remap[used] = np.arange(used.size)
        return LabelledCrops(CropTable(self.table.sets, self.table.where[keep]), remap[self.labels[keep]],
                             [self.identities[i] for i in used], self.per_dataset)


def assemble(sets: list[AlignedSet], min_images: int = 1) -> LabelledCrops:
    """Every aligned image of every set, labelled by identity; identities with fewer than ``min_images``
    aligned images are dropped. ``DatasetError`` when fewer than two identities remain."""
    where, names = [], []
    per_dataset: dict[str, dict[str, int]] = {}
    for s, aligned in enumerate(sets):
        rows = np.flatnonzero(aligned.ok)
        where.append(np.stack([np.full(rows.size, s), rows], axis=1))
        names.extend(aligned.identities[r] for r in rows)
        per_dataset[aligned.name] = {"images": len(aligned), "aligned": int(rows.size), "failed": aligned.n_failed,
                                     "identities": len({aligned.identities[r] for r in rows})}
    if not names:
        raise DatasetError("no image of the training data could be aligned (see the cache manifests)")
    where_arr = np.concatenate(where).astype(np.int64)
    identities, labels = np.unique(np.asarray(names), return_inverse=True)
    counts = np.bincount(labels)
    keep = counts[labels] >= min_images
    data = LabelledCrops(CropTable(sets, where_arr), labels.astype(np.int64), [str(i) for i in identities], per_dataset)
    if not keep.all():
        data = data.subset(keep)
    if data.num_classes < 2:
        raise DatasetError(f"the training data has {data.num_classes} identity with aligned images"
                           f"{f' (at least {min_images} each)' if min_images > 1 else ''}: training needs at least 2")
    return data


def holdout_split(data: LabelledCrops, fraction: float, seed: int) -> tuple[LabelledCrops, LabelledCrops | None]:
    """Identity-disjoint (train, validation): about ``fraction`` of the identities with 2+ images go to
    validation (at least 2, and at least 2 identities stay for training); None when that is impossible."""
    if fraction <= 0:
        return data, None
    counts = np.bincount(data.labels, minlength=data.num_classes)
    candidates = np.flatnonzero(counts >= 2)
    n_val = max(2, int(round(fraction * data.num_classes)))
    if candidates.size < 2 or data.num_classes - n_val < 2:
        return data, None
    rng = np.random.default_rng([seed, 4])
    val_ids = rng.choice(candidates, min(n_val, candidates.size), replace=False)
    is_val = np.isin(data.labels, val_ids)
    return data.subset(~is_val), data.subset(is_val)


def holdout_pairs(labels: np.ndarray, n_pairs: int, seed: int, folds: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced random (pairs, same, folds) over labelled images: half genuine (two distinct images of an
    identity with 2+ images), half impostor (two identities); fold ids 1..folds in contiguous blocks."""
    rng = np.random.default_rng([seed, 5])
    labels = np.asarray(labels)
    ids = np.unique(labels)
    members = {int(i): np.flatnonzero(labels == i) for i in ids}
    multi = np.asarray([i for i in ids if members[int(i)].size >= 2])
    if multi.size == 0 or ids.size < 2:
        raise DatasetError("validation hold-out needs identities with two or more images")
    half = max(1, n_pairs // 2)
    rows = []
    for _ in range(half):
        ident = int(rng.choice(multi))
        a, b = rng.choice(members[ident], 2, replace=False)
        rows.append((a, b, True))
    for _ in range(half):
        i, j = rng.choice(ids, 2, replace=False)
        rows.append((rng.choice(members[int(i)]), rng.choice(members[int(j)]), False))
    order = rng.permutation(len(rows))
    pairs = np.asarray([(rows[k][0], rows[k][1]) for k in order], dtype=np.int64)
    same = np.asarray([rows[k][2] for k in order], dtype=bool)
    fold_ids = np.minimum(np.arange(len(rows)) * folds // len(rows), folds - 1) + 1
    return pairs, same, fold_ids
