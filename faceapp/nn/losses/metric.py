"""Shared pieces of the pair and triplet losses: distances on the unit hypersphere and the miner option."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor

from faceapp.nn.losses.base import FaceLoss, HyperParameter
from faceapp.nn.miners import MINERS, Miner, Pairs, create_miner


def pairwise_distances(embeddings: Tensor, squared: bool = False) -> Tensor:
    """(N, N) Euclidean (or squared Euclidean) distances between rows; gradient-safe at zero distance."""
    sq = embeddings.pow(2).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * embeddings @ embeddings.t()).clamp_min(0.0)
    return d2 if squared else d2.clamp_min(1e-12).sqrt()


def sphere_distances(embeddings: Tensor, squared: bool = False) -> Tensor:
    """Distances between the L2-normalised embeddings (in [0, 2], or [0, 4] squared)."""
    return pairwise_distances(F.normalize(embeddings, dim=1), squared)


def miner_parameter(default: str) -> HyperParameter:
    """The ``miner`` hyper-parameter: one of the registered miners."""
    return HyperParameter(
        "miner", default, help="which pairs/triplets of the batch to learn from", choices=tuple(MINERS.names())
    )


def pair_mean(values: Tensor, pairs_a: Tensor) -> Tensor:
    """Mean of per-pair values; 0 (connected to the graph) when no pair was mined."""
    return values.mean() if pairs_a.numel() else values.sum() * 0.0


def hadsell_terms(dist: Tensor, pairs: Pairs, margin: float) -> tuple[Tensor, Tensor]:
    """Hadsell et al.'s contrastive terms: mean ``d^2/2`` over positive pairs and mean
    ``max(0, margin - d)^2 / 2`` over negative pairs."""
    pos = 0.5 * dist[pairs.pos_a, pairs.pos_b].pow(2)
    neg = 0.5 * (margin - dist[pairs.neg_a, pairs.neg_b]).clamp_min(0.0).pow(2)
    return pair_mean(pos, pairs.pos_a), pair_mean(neg, pairs.neg_a)


class MetricLoss(FaceLoss):
    """A loss on pairs or triplets of the batch, chosen by ``self.miner``: needs P x K batches."""

    requires_pk_sampler: ClassVar[bool] = True

    def __init__(self, embedding_dim: int, num_classes: int = 0, **hparams) -> None:
        super().__init__(embedding_dim, num_classes, **hparams)
        self.miner: Miner = create_miner(self.hparams["miner"])
