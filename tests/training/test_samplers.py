"""Samplers: deterministic per (seed, epoch); P x K batches hold P identities x K images."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.core.errors import DatasetError
from faceapp.training.samplers import PKSampler, ShuffleSampler

LABELS = np.repeat(np.arange(10), [8, 8, 8, 8, 8, 3, 3, 2, 1, 1])


def test_shuffle_covers_each_image_once() -> None:
    sampler = ShuffleSampler(LABELS, 10, seed=1)
    batches = sampler.batches(0)
    assert len(batches) == len(sampler) == 5
    flat = np.concatenate(batches)
    assert len(np.unique(flat)) == flat.size == 50
    assert all((a == b).all() for a, b in zip(batches, sampler.batches(0)))
    assert not all((a == b).all() for a, b in zip(batches, sampler.batches(1)))


def test_pk_batches() -> None:
    sampler = PKSampler(LABELS, p=4, k=3, seed=0)
    assert sampler.excluded == 2                 # two identities with a single image
    for epoch in range(3):
        for batch in sampler.batches(epoch):
            labels = LABELS[batch]
            ids, counts = np.unique(labels, return_counts=True)
            assert ids.size == 4 and (counts == 3).all()
            assert not np.isin(ids, [8, 9]).any()
            for ident in ids:            # identities with >= K images use distinct images
                if (LABELS == ident).sum() >= 3:
                    assert np.unique(batch[labels == ident]).size == 3


def test_pk_needs_pairs() -> None:
    with pytest.raises(DatasetError, match="identities with a single image are fine for softmax"):
        PKSampler(np.arange(6), p=2, k=2)
