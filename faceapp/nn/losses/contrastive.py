"""Pairwise contrastive losses: Hadsell's contrastive, double-margin contrastive, DeepID2's joint loss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from faceapp.nn.heads import LinearClassifier
from faceapp.nn.losses.base import HyperParameter, register_loss
from faceapp.nn.losses.classifier import ClassifierLoss
from faceapp.nn.losses.metric import MetricLoss, hadsell_terms, miner_parameter, pair_mean, pairwise_distances, sphere_distances
from faceapp.nn.miners import create_miner


@register_loss("contrastive")
class ContrastiveLoss(MetricLoss):
    """Contrastive loss (Hadsell et al.): pull same-identity pairs together, push others beyond a margin.

    ``L = mean_pos d^2/2 + mean_neg max(0, m - d)^2/2`` with ``d`` the Euclidean distance of the
    L2-normalised embeddings of a mined pair (positive and negative pairs averaged separately so the many
    negatives of a P x K batch do not drown the positives).
    Reference: Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an Invariant Mapping", CVPR 2006.
    """

    hyperparameters = [
        HyperParameter("margin", 1.0, 0.0, 2.0, "distance beyond which negative pairs cost nothing"),
        miner_parameter("all"),
    ]

    def compute(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        margin = self.hparams["margin"]
        dist = sphere_distances(embeddings)
        pairs = self.miner.pairs(dist, labels, 0.0, margin)
        pos, neg = hadsell_terms(dist, pairs, margin)
        self.record(pos=pos, neg=neg, pos_pairs=len(pairs.pos_a), neg_pairs=len(pairs.neg_a))
        return pos + neg


@register_loss("double_margin_contrastive")
class DoubleMarginContrastiveLoss(MetricLoss):
    """Double-margin contrastive loss: positives pulled inside eps+, negatives pushed beyond eps- (open-set).

    ``L = mean_pos max(0, d - eps+) + mean_neg max(0, eps- - d)`` on L2-normalised embeddings, as in
    pytorch-metric-learning's ``ContrastiveLoss(pos_margin, neg_margin)``; the gap between the margins
    leaves room for a verification threshold.
    References: Wang & Deng, "Deep Face Recognition: A Survey", Neurocomputing 2021 (contrastive loss with
    eps+ and eps-, after DeepID2+/DeepID3); Hadsell et al., CVPR 2006.
    """

    hyperparameters = [
        HyperParameter("pos_margin", 0.5, 0.0, 2.0, "eps+: positive pairs closer than this cost nothing"),
        HyperParameter("neg_margin", 1.0, 0.0, 2.0, "eps-: negative pairs farther than this cost nothing"),
        miner_parameter("all"),
    ]

    def compute(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        pos_margin, neg_margin = self.hparams["pos_margin"], self.hparams["neg_margin"]
        dist = sphere_distances(embeddings)
        pairs = self.miner.pairs(dist, labels, pos_margin, neg_margin)
        pos = pair_mean((dist[pairs.pos_a, pairs.pos_b] - pos_margin).clamp_min(0.0), pairs.pos_a)
        neg = pair_mean((neg_margin - dist[pairs.neg_a, pairs.neg_b]).clamp_min(0.0), pairs.neg_a)
        self.record(pos=pos, neg=neg, pos_pairs=len(pairs.pos_a), neg_pairs=len(pairs.neg_a))
        return pos + neg


@register_loss("deepid2")
class DeepID2Loss(ClassifierLoss):
    """DeepID2 joint identification-verification: softmax cross-entropy + weight * contrastive on the same features.

    ``L = CE(W f + b, y) + lambda * Verif``, ``Verif = mean_pos |f_i - f_j|^2/2 + mean_neg max(0, m - |f_i - f_j|)^2/2``
    over the mined pairs. The paper uses raw features and a margin tuned to their scale; by default the
    verification term here uses L2-normalised features so that ``m`` is a distance on the unit sphere.
    Reference: Sun, Wang, Tang, "Deep Learning Face Representation by Joint Identification-Verification",
    NIPS 2014.
    """

    requires_pk_sampler = True
    hyperparameters = [
        HyperParameter("weight", 0.05, 0.0, 100.0, "lambda: weight of the verification term (paper: 0.05)"),
        HyperParameter("margin", 1.0, 0.0, 1000.0, "m: margin of the verification term"),
        HyperParameter("normalize", True, help="verification on L2-normalised features (False = raw, as the paper)"),
        miner_parameter("all"),
    ]

    def __init__(self, embedding_dim: int, num_classes: int = 0, **hparams) -> None:
        super().__init__(embedding_dim, num_classes, **hparams)
        self.head = LinearClassifier(embedding_dim, num_classes)
        self.miner = create_miner(self.hparams["miner"])

    def compute(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        ce = self.cross_entropy(embeddings, labels)
        margin = self.hparams["margin"]
        features = F.normalize(embeddings, dim=1) if self.hparams["normalize"] else embeddings
        dist = pairwise_distances(features)
        pos, neg = hadsell_terms(dist, self.miner.pairs(dist, labels, 0.0, margin), margin)
        verification = pos + neg
        self.record(ce=ce, verification=verification)
        return ce + self.hparams["weight"] * verification
