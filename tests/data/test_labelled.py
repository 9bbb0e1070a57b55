"""Labelled crops (faceapp.data.labelled): every aligned row of several sets under one label space, rare
identities dropped, an identity-disjoint hold-out, balanced hold-out pairs, batches gathered in order."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.core.errors import DatasetError
from faceapp.data.labelled import assemble, holdout_pairs, holdout_split


class Aligned:
    """What ``assemble`` reads of an AlignedSet / PackedSet: crops, ok flags, identities, a name."""

    def __init__(self, name: str, identities: list[str], ok: list[bool]) -> None:
        self.name, self.identities, self.ok = name, identities, np.asarray(ok)
        self.crops = np.stack([np.full((112, 112, 3), i, np.uint8) for i in range(len(identities))])

    def __len__(self) -> int:
        return len(self.identities)

    @property
    def n_failed(self) -> int:
        return int((~self.ok).sum())


def test_assemble_labels_every_aligned_row_and_drops_rare_identities() -> None:
    a = Aligned("a", ["a/1", "a/1", "a/2", "a/2", "a/3"], [True, True, True, False, True])
    b = Aligned("b", ["b/1", "b/1", "b/1"], [True, True, True])
    data = assemble([a, b])
    assert data.identities == ["a/1", "a/2", "a/3", "b/1"] and len(data) == 7
    assert data.per_dataset["a"] == {"images": 5, "aligned": 4, "failed": 1, "identities": 3}
    kept = assemble([a, b], min_images=2)                  # a/2 has one aligned image left, a/3 one
    assert kept.identities == ["a/1", "b/1"] and kept.labels.tolist() == [0, 0, 1, 1, 1]
    crops = kept.table.crops(np.asarray([4, 0, 2]))        # gathered in the order asked, across sets
    assert [int(c[0, 0, 0]) for c in crops] == [2, 0, 0]
    with pytest.raises(DatasetError, match="at least 2"):
        assemble([a], min_images=3)


def test_holdout_is_identity_disjoint_and_pairs_are_balanced() -> None:
    names = [f"p/{i}" for i in range(20) for _ in range(3)]
    data = assemble([Aligned("p", names, [True] * len(names))])
    train, val = holdout_split(data, 0.2, seed=1)
    assert val is not None and val.num_classes == 4 and train.num_classes == 16
    assert not set(train.identities) & set(val.identities)
    assert holdout_split(data, 0.2, seed=1)[1].identities == val.identities      # seeded
    whole, none = holdout_split(data, 0.0, seed=1)
    assert whole is data and none is None
    pairs, same, folds = holdout_pairs(val.labels, 40, seed=1)
    assert pairs.shape == (40, 2) and same.sum() == 20 and sorted(set(folds.tolist())) == list(range(1, 11))
    labels = val.labels
    assert all((labels[i] == labels[j]) == s and (i != j or not s) for (i, j), s in zip(pairs, same))
    with pytest.raises(DatasetError, match="two or more images"):
        holdout_pairs(np.arange(5), 10, seed=1)
