"""Online miners: which pairs or triplets of a P x K batch a pair/triplet loss learns from.

A miner is kept separate from the loss (as in pytorch-metric-learning) and is stateless: it reads the
batch's distance matrix (computed by the loss, with the loss's distance) and the labels, and returns
index tensors. The loss passes its own margins, so "violating" means "has a non-zero loss".

Triplets ``(a, p, n)``: ``labels[a] == labels[p]``, ``a != p``, ``labels[a] != labels[n]``.
Pairs ``(pos_a, pos_b, neg_a, neg_b)``: positive pairs (same identity) and negative pairs.

| name | triplets | pairs |
|---|---|---|
| all | every valid triplet | every pair ``i < j`` |
| batch_all | valid triplets with ``d(a,p) - d(a,n) + margin > 0`` | positives with ``d > pos_margin``, negatives with ``d < neg_margin`` |
| batch_hard | per anchor: farthest positive, nearest negative (Hermans et al. 2017) | the same two pairs per anchor |
| semi_hard | ``d(a,p) < d(a,n) < d(a,p) + margin`` (Schroff et al. 2015) | all positives + negatives of semi-hard triplets (margin ``neg_margin - pos_margin``) |

Averaging a loss over ``batch_all`` picks equals averaging over the non-zero terms (Hermans' "BA+").
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from faceapp.core.registry import Registry


class Triplets(NamedTuple):
    """Index tensors of mined triplets (anchor, positive, negative), all of the same length."""

    anchor: Tensor
    positive: Tensor
    negative: Tensor


class Pairs(NamedTuple):
    """Index tensors of mined positive pairs (pos_a, pos_b) and negative pairs (neg_a, neg_b)."""

    pos_a: Tensor
    pos_b: Tensor
    neg_a: Tensor
    neg_b: Tensor


def label_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(same, different)`` boolean (N, N) masks; ``same`` excludes the diagonal."""
    same = labels[:, None] == labels[None, :]
    different = ~same
    same.fill_diagonal_(False)
    return same, different


def valid_triplet_mask(labels: Tensor) -> Tensor:
    """(N, N, N) mask of valid triplets ``[a, p, n]``."""
    same, different = label_masks(labels)
    return same[:, :, None] & different[:, None, :]


def triplets_where(labels: Tensor, keep: Tensor | None = None) -> Triplets:
    """The valid triplets, restricted to ``keep[a, p, n]`` when given."""
    mask = valid_triplet_mask(labels)
    return Triplets(*torch.nonzero(mask if keep is None else mask & keep, as_tuple=True))


def upper_pairs(labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(same, different)`` masks restricted to pairs ``i < j``."""
    same, different = label_masks(labels)
    upper = torch.ones_like(same).triu(diagonal=1)
    return same & upper, different & upper


def _pairs_from_masks(positive: Tensor, negative: Tensor) -> Pairs:
    pos_a, pos_b = torch.nonzero(positive, as_tuple=True)
    neg_a, neg_b = torch.nonzero(negative, as_tuple=True)
    return Pairs(pos_a, pos_b, neg_a, neg_b)


class Miner:
    """Base miner; subclasses implement ``triplets`` and may override ``pairs``."""

    name: str = ""

    def triplets(self, dist: Tensor, labels: Tensor, margin: float) -> Triplets:
        """Mined triplets of a (N, N) distance matrix (smaller = more similar)."""
        raise NotImplementedError

    def pairs(self, dist: Tensor, labels: Tensor, pos_margin: float, neg_margin: float) -> Pairs:
        """Mined pairs; default: the distinct (anchor, positive) and (anchor, negative) pairs of the
        triplets mined with margin ``neg_margin - pos_margin``."""
        t = self.triplets(dist, labels, neg_margin - pos_margin)
        n = dist.shape[0]
        positive = torch.zeros(n, n, dtype=torch.bool, device=dist.device)
        negative = torch.zeros_like(positive)
        positive[t.anchor, t.positive] = True
        negative[t.anchor, t.negative] = True
        return _pairs_from_masks(positive, negative)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


MINERS: Registry[Miner] = Registry("miner")


@MINERS.register("all")
class AllMiner(Miner):
    """Every valid triplet, every pair i < j (no mining)."""

    name = "all"

    def triplets(self, dist: Tensor, labels: Tensor, margin: float) -> Triplets:
        return triplets_where(labels)

    def pairs(self, dist: Tensor, labels: Tensor, pos_margin: float, neg_margin: float) -> Pairs:
        return _pairs_from_masks(*upper_pairs(labels))


@MINERS.register("batch_all")
class BatchAllMiner(Miner):
    """Every valid triplet (pair) with a non-zero loss under the loss's margin(s)."""

    name = "batch_all"

    @torch.no_grad()
    def triplets(self, dist: Tensor, labels: Tensor, margin: float) -> Triplets:
        dist = dist.detach()
        return triplets_where(labels, dist[:, :, None] - dist[:, None, :] + margin > 0)

    @torch.no_grad()
    def pairs(self, dist: Tensor, labels: Tensor, pos_margin: float, neg_margin: float) -> Pairs:
        dist = dist.detach()
        same, different = upper_pairs(labels)
        return _pairs_from_masks(same & (dist > pos_margin), different & (dist < neg_margin))


@MINERS.register("batch_hard")
class BatchHardMiner(Miner):
    """Per anchor, the farthest positive and the nearest negative (batch-hard, Hermans et al. 2017)."""

    name = "batch_hard"

    @torch.no_grad()
    def hardest(self, dist: Tensor, labels: Tensor) -> Triplets:
        """One triplet per anchor that has both a positive and a negative in the batch."""
        dist = dist.detach()
        same, different = label_masks(labels)
        inf = torch.finfo(dist.dtype).max
        hardest_pos = dist.masked_fill(~same, -inf).argmax(dim=1)
        hardest_neg = dist.masked_fill(~different, inf).argmin(dim=1)
        anchors = torch.nonzero(same.any(dim=1) & different.any(dim=1), as_tuple=True)[0]
        return Triplets(anchors, hardest_pos[anchors], hardest_neg[anchors])

    def triplets(self, dist: Tensor, labels: Tensor, margin: float) -> Triplets:
        return self.hardest(dist, labels)

    def pairs(self, dist: Tensor, labels: Tensor, pos_margin: float, neg_margin: float) -> Pairs:
        t = self.hardest(dist, labels)
        return Pairs(t.anchor, t.positive, t.anchor, t.negative)


@MINERS.register("semi_hard")
class SemiHardMiner(Miner):
    """Triplets whose negative is farther than the positive but inside the margin (FaceNet's semi-hard)."""

    name = "semi_hard"

    @torch.no_grad()
    def triplets(self, dist: Tensor, labels: Tensor, margin: float) -> Triplets:
        ap, an = dist.detach()[:, :, None], dist.detach()[:, None, :]
        return triplets_where(labels, (an > ap) & (an < ap + margin))

    def pairs(self, dist: Tensor, labels: Tensor, pos_margin: float, neg_margin: float) -> Pairs:
        """Every positive pair i < j, and the distinct negative pairs of the semi-hard triplets."""
        t = self.triplets(dist, labels, neg_margin - pos_margin)
        same, _ = upper_pairs(labels)
        negative = torch.zeros_like(same)
        negative[t.anchor, t.negative] = True
        return _pairs_from_masks(same, negative)


def create_miner(name: str) -> Miner:
    """The miner registered as ``name`` (``all``, ``batch_all``, ``batch_hard``, ``semi_hard``)."""
    return MINERS.create(name)


def list_miners() -> dict[str, str]:
    """name -> one-line summary."""
    return MINERS.describe()
