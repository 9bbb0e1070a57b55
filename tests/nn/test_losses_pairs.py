"""Contrastive, double-margin contrastive, DeepID2, DeepFace siamese and triplet losses recomputed by hand
(numpy float64 loops over pairs/triplets) and against pytorch-metric-learning at matching settings."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning import reducers as pml_reducers

from faceapp.nn.losses import create_loss


def batch(n: int = 12, d: int = 5, p: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.arange(n) % p


def unit(x: torch.Tensor) -> np.ndarray:
    xs = x.double().numpy()
    return xs / np.linalg.norm(xs, axis=1, keepdims=True)


def pairs(labels: torch.Tensor) -> tuple[list, list]:
    ys = labels.tolist()
    all_pairs = list(itertools.combinations(range(len(ys)), 2))
    return [(i, j) for i, j in all_pairs if ys[i] == ys[j]], [(i, j) for i, j in all_pairs if ys[i] != ys[j]]


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def hadsell(f: np.ndarray, labels: torch.Tensor, margin: float) -> float:
    pos, neg = pairs(labels)
    d = lambda i, j: float(np.linalg.norm(f[i] - f[j]))  # noqa: E731
    return mean([0.5 * d(i, j) ** 2 for i, j in pos]) + mean([0.5 * max(0.0, margin - d(i, j)) ** 2 for i, j in neg])


def test_contrastive_by_hand():
    x, y = batch()
    loss = create_loss("contrastive", embedding_dim=5, num_classes=0, margin=1.2)
    assert loss(x, y).item() == pytest.approx(hadsell(unit(x), y, 1.2), rel=1e-5)
    terms = loss.last_terms
    assert terms["pos_pairs"] == 12 and terms["neg_pairs"] == 66 - 12


def test_contrastive_with_batch_hard_pairs_by_hand():
    x, y = batch(seed=1)
    f, ys = unit(x), y.tolist()
    loss = create_loss("contrastive", embedding_dim=5, num_classes=0, margin=1.2, miner="batch_hard")
    d = lambda i, j: float(np.linalg.norm(f[i] - f[j]))  # noqa: E731
    pos, neg = [], []
    for a in range(len(ys)):
        pos.append(0.5 * max(d(a, p) for p in range(len(ys)) if p != a and ys[p] == ys[a]) ** 2)
        neg.append(0.5 * max(0.0, 1.2 - min(d(a, n) for n in range(len(ys)) if ys[n] != ys[a])) ** 2)
    assert loss(x, y).item() == pytest.approx(mean(pos) + mean(neg), rel=1e-5)


def double_margin(f: np.ndarray, labels: torch.Tensor, mp: float, mn: float, nonzero: bool) -> float:
    pos, neg = pairs(labels)
    d = lambda i, j: float(np.linalg.norm(f[i] - f[j]))  # noqa: E731
    pos_terms = [max(0.0, d(i, j) - mp) for i, j in pos]
    neg_terms = [max(0.0, mn - d(i, j)) for i, j in neg]
    if nonzero:
        pos_terms, neg_terms = [v for v in pos_terms if v > 0], [v for v in neg_terms if v > 0]
    return mean(pos_terms) + mean(neg_terms)


def test_double_margin_contrastive_by_hand_and_against_pml():
    x, y = batch(seed=2)
    loss = create_loss("double_margin_contrastive", embedding_dim=5, num_classes=0, pos_margin=0.6, neg_margin=1.3)
    expected = double_margin(unit(x), y, 0.6, 1.3, nonzero=False)
    assert loss(x, y).item() == pytest.approx(expected, rel=1e-5)
    theirs = pml_losses.ContrastiveLoss(pos_margin=0.6, neg_margin=1.3, reducer=pml_reducers.MeanReducer())
    assert loss(x, y).item() == pytest.approx(theirs(x, y).item(), rel=1e-5)
    # batch_all keeps the pairs with non-zero loss: PML's default average-over-non-zero reducer
    mined = create_loss("double_margin_contrastive", embedding_dim=5, num_classes=0, pos_margin=0.6, neg_margin=1.3,
                        miner="batch_all")
    expected = double_margin(unit(x), y, 0.6, 1.3, nonzero=True)
    assert mined(x, y).item() == pytest.approx(expected, rel=1e-5)
    assert mined(x, y).item() == pytest.approx(pml_losses.ContrastiveLoss(pos_margin=0.6, neg_margin=1.3)(x, y).item(), rel=1e-5)
    assert mined.last_terms["neg_pairs"] < loss.last_terms["neg_pairs"]


@pytest.mark.parametrize("normalize", [True, False])
def test_deepid2_is_cross_entropy_plus_weighted_contrastive(normalize):
    x, y = batch(seed=3)
    loss = create_loss("deepid2", embedding_dim=5, num_classes=4, weight=0.5, margin=2.0, normalize=normalize)
    xs = x.double().numpy()
    w = loss.head.weight.detach().double().numpy()
    b = loss.head.bias.detach().double().numpy()
    ce = 0.0
    for xi, yi in zip(xs, y.tolist()):
        logits = w @ xi + b
        ce += -(logits[yi] - math.log(np.exp(logits).sum()))
    ce /= len(xs)
    verification = hadsell(unit(x) if normalize else xs, y, 2.0)
    assert loss(x, y).item() == pytest.approx(ce + 0.5 * verification, rel=1e-5)
    assert loss.last_terms == {"ce": pytest.approx(ce, rel=1e-5), "verification": pytest.approx(verification, rel=1e-5)}


@pytest.mark.parametrize("balance", [True, False])
def test_siamese_head_is_logistic_regression_on_weighted_abs_difference(balance):
    x, y = batch(n=8, seed=4)
    loss = create_loss("siamese", embedding_dim=5, num_classes=0, balance=balance)
    with torch.no_grad():
        loss.weight.copy_(torch.tensor([-1.0, 0.5, -2.0, -0.3, 1.0]))
        loss.bias.fill_(0.7)
    f, w = unit(x), loss.weight.detach().double().numpy()
    pos, neg = pairs(y)

    def bce(i: int, j: int, same: bool) -> float:
        z = 0.7 + float(w @ np.abs(f[i] - f[j]))
        p = 1.0 / (1.0 + math.exp(-z))
        return -math.log(p) if same else -math.log(1.0 - p)

    pos_terms, neg_terms = [bce(i, j, True) for i, j in pos], [bce(i, j, False) for i, j in neg]
    expected = (mean(pos_terms) + mean(neg_terms)) / 2 if balance else mean(pos_terms + neg_terms)
    assert loss(x, y).item() == pytest.approx(expected, rel=1e-5)
    z = loss.pair_logits(x[:1], x[4:5])
    assert z.item() == pytest.approx(0.7 + float(w @ np.abs(f[0] - f[4])), rel=1e-5)
    assert {n for n, _ in loss.named_parameters()} == {"weight", "bias"}


def triplet_by_hand(x: torch.Tensor, y: torch.Tensor, margin: float, squared: bool, miner: str) -> float:
    f, ys, n = unit(x), y.tolist(), len(y)
    d = lambda i, j: float(np.sum((f[i] - f[j]) ** 2)) ** (1.0 if squared else 0.5)  # noqa: E731
    if miner == "batch_hard":
        terms = []
        for a in range(n):
            hardest_p = max(d(a, p) for p in range(n) if p != a and ys[p] == ys[a])
            hardest_n = min(d(a, q) for q in range(n) if ys[q] != ys[a])
            terms.append(max(0.0, hardest_p - hardest_n + margin))
        return mean(terms)
    valid = [(a, p, q) for a, p, q in itertools.product(range(n), repeat=3)
             if a != p and ys[a] == ys[p] and ys[q] != ys[a]]
    keep = {
        "all": lambda ap, an: True,
        "batch_all": lambda ap, an: ap - an + margin > 0,
        "semi_hard": lambda ap, an: ap < an < ap + margin,
    }[miner]
    chosen = [(d(a, p), d(a, q)) for a, p, q in valid if keep(d(a, p), d(a, q))]
    return mean([max(0.0, ap - an + margin) for ap, an in chosen])


@pytest.mark.parametrize("miner", ["all", "batch_all", "batch_hard", "semi_hard"])
@pytest.mark.parametrize("squared", [True, False])
def test_triplet_by_hand(miner, squared):
    x, y = batch(seed=5)
    loss = create_loss("triplet", embedding_dim=5, num_classes=0, margin=0.3, miner=miner, squared=squared)
    expected = triplet_by_hand(x, y, 0.3, squared, miner)
    assert expected > 0
    assert loss(x, y).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("squared", [True, False])
def test_triplet_against_pml(squared):
    x, y = batch(n=20, seed=6)
    distance = pml_distances.LpDistance(normalize_embeddings=True, p=2, power=2 if squared else 1)
    margin = 0.4
    cases = {
        "semi_hard": pml_miners.TripletMarginMiner(margin=margin, type_of_triplets="semihard", distance=distance),
        "batch_all": pml_miners.TripletMarginMiner(margin=margin, type_of_triplets="all", distance=distance),
        "batch_hard": pml_miners.BatchHardMiner(distance=distance),
    }
    for name, miner in cases.items():
        ours = create_loss("triplet", embedding_dim=5, num_classes=0, margin=margin, miner=name, squared=squared)
        theirs = pml_losses.TripletMarginLoss(margin=margin, distance=distance, reducer=pml_reducers.MeanReducer())
        assert ours(x, y).item() == pytest.approx(theirs(x, y, miner(x, y)).item(), rel=1e-5), name


def test_nothing_to_learn_gives_a_connected_zero():
    x = torch.randn(4, 5, requires_grad=True)
    y = torch.arange(4)  # every identity once: no positive pair, no triplet
    triplet = create_loss("triplet", embedding_dim=5, num_classes=0)
    value = triplet(x, y)
    value.backward()
    assert value.item() == 0.0 and triplet.last_terms == {"triplet": 0.0, "triplets": 0.0}
    assert x.grad is not None and torch.count_nonzero(x.grad) == 0
    for name in ("contrastive", "double_margin_contrastive"):
        loss = create_loss(name, embedding_dim=5, num_classes=0)
        loss(x, y).backward()
        assert loss.last_terms["pos"] == 0.0 and loss.last_terms["pos_pairs"] == 0
        assert torch.isfinite(x.grad).all()
