"""Triplet loss on the unit hypersphere (FaceNet) with online mining."""

from __future__ import annotations

from torch import Tensor

from faceapp.nn.losses.base import HyperParameter, register_loss, zero_loss
from faceapp.nn.losses.metric import MetricLoss, miner_parameter, sphere_distances


@register_loss("triplet")
class TripletLoss(MetricLoss):
    """Triplet loss (FaceNet): anchor closer to its positive than to any negative by a margin, on the unit sphere.

    ``L = mean over mined (a, p, n) of max(0, d(a,p) - d(a,n) + alpha)`` with ``d`` the squared Euclidean
    distance of L2-normalised embeddings (``squared=False``: plain Euclidean, as Hermans et al.).
    Miners: ``batch_all`` (non-zero triplets), ``batch_hard`` (hardest positive and negative per anchor),
    ``semi_hard`` (``d(a,p) < d(a,n) < d(a,p) + alpha``, FaceNet's choice), ``all``.
    References: Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for Face Recognition and
    Clustering", CVPR 2015; Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", arXiv:1703.07737, 2017.
    """

    hyperparameters = [
        HyperParameter("margin", 0.2, 0.0, 4.0, "alpha: required gap between negative and positive distances"),
        miner_parameter("semi_hard"),
        HyperParameter("squared", True, help="squared Euclidean distances (FaceNet); False = Euclidean"),
    ]

    def compute(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        margin = self.hparams["margin"]
        dist = sphere_distances(embeddings, squared=self.hparams["squared"])
        a, p, n = self.miner.triplets(dist, labels, margin)
        if a.numel() == 0:
            self.record(triplet=0.0, triplets=0)
            return zero_loss(embeddings)
        loss = (dist[a, p] - dist[a, n] + margin).clamp_min(0.0).mean()
        self.record(triplet=loss, triplets=len(a))
        return loss
