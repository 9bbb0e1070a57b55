"""Batch samplers over integer labels: plain shuffled, and P x K (P identities x K images each).

Both are pure functions of (seed, epoch): ``batches(epoch)`` always returns the same list, so a
checkpoint only needs the epoch and the batch position to resume exactly where the run stopped.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from faceapp.core.errors import DatasetError


class BatchSampler(Protocol):
    """What the training loop needs from a sampler."""

    def batches(self, epoch: int) -> list[np.ndarray]: ...

    def __len__(self) -> int: ...


class ShuffleSampler:
    """Every image once per epoch in a seeded random order, in batches of ``batch_size`` (last partial
    batch dropped when there is at least one full batch, so batch statistics stay comparable)."""

    def __init__(self, labels: np.ndarray, batch_size: int, seed: int = 0) -> None:
        self.n = int(np.asarray(labels).size)
        if self.n == 0:
            raise DatasetError("no training images to sample from")
        self.batch_size = int(batch_size)
        self.seed = int(seed)

    def __len__(self) -> int:
        return max(1, self.n // self.batch_size)

    def batches(self, epoch: int) -> list[np.ndarray]:
        order = np.random.default_rng([self.seed, epoch, 1]).permutation(self.n)
        if self.n < self.batch_size:
            return [order]
        return [order[i * self.batch_size:(i + 1) * self.batch_size] for i in range(len(self))]


class PKSampler:
    """Batches of P identities x K images for pair and triplet losses (every batch has positives).

    Identities with fewer than two images cannot form a positive pair and are left out (``excluded``
    counts them). Identities are visited in a seeded random order, P at a time; an identity with fewer
    than K images contributes all of them plus repeats drawn at random. One epoch has about
    ``n_images / (P*K)`` batches.
    """

    def __init__(self, labels: np.ndarray, p: int, k: int, seed: int = 0) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        if k < 2:
            raise DatasetError(f"P x K sampling needs K >= 2 images per identity, got K = {k}")
        ids, counts = np.unique(labels, return_counts=True)
        usable = ids[counts >= 2]
        self.excluded = int((counts < 2).sum())
        if usable.size < 2:
            raise DatasetError(
                f"pair and triplet losses need at least 2 identities with 2 or more images; this data has "
                f"{usable.size} (identities with a single image are fine for softmax losses, unusable for pairs)")
        self.p = max(2, min(int(p), int(usable.size)))
        self.k = int(k)
        self.seed = int(seed)
        self.members = {int(i): np.flatnonzero(labels == i) for i in usable}
        self.identities = usable
        self.n_images = int(sum(m.size for m in self.members.values()))

    def __len__(self) -> int:
        return max(1, self.n_images // (self.p * self.k))

    def batches(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch, 2])
        out: list[np.ndarray] = []
        order: list[int] = []
        for _ in range(len(self)):
            if len(order) < self.p:
                order.extend(int(i) for i in rng.permutation(self.identities))
            chosen, order = order[: self.p], order[self.p:]
            # a batch must not repeat an identity: push duplicates (from a reshuffle seam) back
            seen: list[int] = []
            for ident in chosen:
                if ident in seen:
                    order.append(ident)
                else:
                    seen.append(ident)
            while len(seen) < self.p:
                extra = int(rng.choice(self.identities))
                if extra not in seen:
                    seen.append(extra)
            rows = []
            for ident in seen:
                members = self.members[ident]
                if members.size >= self.k:
                    rows.append(rng.choice(members, self.k, replace=False))
                else:
                    rows.append(np.r_[members, rng.choice(members, self.k - members.size, replace=True)])
            out.append(np.concatenate(rows))
        return out


def make_sampler(kind: str, labels: np.ndarray, batch_size: int, k: int, seed: int) -> BatchSampler:
    """``"pk"`` -> PKSampler(P = batch_size // k, K = k); ``"shuffle"`` -> ShuffleSampler."""
    if kind == "pk":
        return PKSampler(labels, max(2, batch_size // k), k, seed)
    if kind == "shuffle":
        return ShuffleSampler(labels, batch_size, seed)
    raise DatasetError(f"sampler {kind!r}: expected shuffle or pk")
