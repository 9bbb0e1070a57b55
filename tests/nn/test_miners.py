"""Miners pick exactly the pairs/triplets their definitions say, on hand-made 1-D embeddings, and agree
with pytorch-metric-learning's miners on random ones."""

from __future__ import annotations

import itertools

import pytest
import torch
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import miners as pml_miners

from faceapp.nn.losses.metric import sphere_distances
from faceapp.nn.miners import MINERS, create_miner, list_miners

# Points on a line: identities A = {0, 1, 3}, B = {1.5, 5}, C = {0.4} (C has no positive).
POINTS = torch.tensor([0.0, 1.0, 3.0, 1.5, 5.0, 0.4])
LABELS = torch.tensor([0, 0, 0, 1, 1, 2])
DIST = (POINTS[:, None] - POINTS[None, :]).abs()


def as_set(*tensors: torch.Tensor) -> set[tuple[int, ...]]:
    return set(zip(*(t.tolist() for t in tensors)))


def brute_force_triplets(dist, labels, keep) -> set[tuple[int, int, int]]:
    n = len(labels)
    return {
        (a, p, q)
        for a, p, q in itertools.product(range(n), repeat=3)
        if a != p and labels[a] == labels[p] and labels[a] != labels[q] and keep(dist[a, p].item(), dist[a, q].item())
    }


def test_registry_lists_the_miners():
    assert set(list_miners()) == {"all", "batch_all", "batch_hard", "semi_hard"}
    with pytest.raises(KeyError, match="unknown miner 'hard'"):
        create_miner("hard")


def test_batch_hard_picks_farthest_positive_and_nearest_negative():
    t = create_miner("batch_hard").triplets(DIST, LABELS, margin=1.0)
    # anchor 5 (identity C) has no positive: no triplet
    assert as_set(*t) == {(0, 2, 5), (1, 2, 3), (2, 0, 3), (3, 4, 1), (4, 3, 2)}
    p = create_miner("batch_hard").pairs(DIST, LABELS, 0.0, 1.0)
    assert as_set(p.pos_a, p.pos_b) == {(0, 2), (1, 2), (2, 0), (3, 4), (4, 3)}
    assert as_set(p.neg_a, p.neg_b) == {(0, 5), (1, 3), (2, 3), (3, 1), (4, 2)}


def test_semi_hard_keeps_negatives_beyond_the_positive_but_inside_the_margin():
    t = create_miner("semi_hard").triplets(DIST, LABELS, margin=1.0)
    # (2, 1, 4) has d(a,n) == d(a,p) == 2: not strictly farther, so not semi-hard
    assert as_set(*t) == {(0, 1, 3), (2, 1, 5), (4, 3, 1)}
    assert as_set(*t) == brute_force_triplets(DIST, LABELS, lambda ap, an: ap < an < ap + 1.0)
    p = create_miner("semi_hard").pairs(DIST, LABELS, 0.0, 1.0)
    assert as_set(p.pos_a, p.pos_b) == {(0, 1), (0, 2), (1, 2), (3, 4)}
    assert as_set(p.neg_a, p.neg_b) == {(0, 3), (2, 5), (4, 1)}


def test_batch_all_keeps_the_valid_triplets_with_positive_loss():
    t = create_miner("batch_all").triplets(DIST, LABELS, margin=1.0)
    mined = as_set(*t)
    assert mined == brute_force_triplets(DIST, LABELS, lambda ap, an: ap - an + 1.0 > 0)
    assert len(mined) == 20
    assert {(0, 1, 3), (0, 1, 5), (2, 1, 4), (4, 3, 2)} <= mined
    assert (4, 3, 0) not in mined and (0, 2, 4) not in mined  # d(a,n) >= d(a,p) + margin: zero loss


def test_all_triplets_and_pairs():
    t = create_miner("all").triplets(DIST, LABELS, margin=1.0)
    assert as_set(*t) == brute_force_triplets(DIST, LABELS, lambda ap, an: True)
    assert len(t.anchor) == 3 * 2 * 3 + 2 * 1 * 4
    p = create_miner("all").pairs(DIST, LABELS, 0.0, 1.0)
    assert as_set(p.pos_a, p.pos_b) == {(0, 1), (0, 2), (1, 2), (3, 4)}
    assert len(p.neg_a) == 15 - 4 and all(LABELS[a] != LABELS[b] and a < b for a, b in zip(p.neg_a, p.neg_b))


def test_batch_all_pairs_violate_the_margins():
    p = create_miner("batch_all").pairs(DIST, LABELS, pos_margin=2.5, neg_margin=1.0)
    assert as_set(p.pos_a, p.pos_b) == {(0, 2), (3, 4)}          # d > 2.5
    assert as_set(p.neg_a, p.neg_b) == {(0, 5), (1, 3), (1, 5)}  # d < 1.0


def test_no_positives_no_triplets():
    labels = torch.arange(4)
    dist = torch.rand(4, 4)
    for name in MINERS.names():
        t = create_miner(name).triplets(dist, labels, 0.2)
        assert len(t.anchor) == 0, name


def random_batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(24, 5, generator=g), torch.arange(24) % 6


@pytest.mark.parametrize("power", [1, 2])
def test_agrees_with_pml_miners(power):
    x, y = random_batch(power)
    dist = sphere_distances(x, squared=power == 2)
    distance = pml_distances.LpDistance(normalize_embeddings=True, p=2, power=power)
    ours = create_miner("batch_hard").triplets(dist, y, 0.2)
    theirs = pml_miners.BatchHardMiner(distance=distance)(x, y)
    assert as_set(*ours) == as_set(*theirs) and len(ours.anchor) == 24
    for kind, name in (("semihard", "semi_hard"), ("all", "batch_all")):
        margin = 0.3 if power == 1 else 0.5
        ours = create_miner(name).triplets(dist, y, margin)
        theirs = pml_miners.TripletMarginMiner(margin=margin, type_of_triplets=kind, distance=distance)(x, y)
        assert as_set(*ours) == as_set(*theirs), name
        assert len(ours.anchor) > 10, f"{name}: the check needs some mined triplets"
