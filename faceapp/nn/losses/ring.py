"""Ring loss (+ softmax cross-entropy): a soft constraint of the feature norm to a learned radius R."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from faceapp.nn.heads import LinearClassifier
from faceapp.nn.losses.base import HyperParameter, register_loss
from faceapp.nn.losses.classifier import ClassifierLoss


@register_loss("ring")
class RingLoss(ClassifierLoss):
    """Ring loss: softmax cross-entropy + weight/2 * mean (|x_i| - R)^2 with the radius R learned.

    ``L = CE(W x + b, y) + lambda/(2N) sum_i (|x_i|_2 - R)^2``; R is an ``nn.Parameter`` trained by the
    same optimiser. With ``radius_init = 0`` R starts at the mean feature norm of the first batch.
    Reference: Zheng, Pal, Savvides, "Ring loss: Convex Feature Normalization for Face Recognition", CVPR 2018.
    """

    hyperparameters = [
        HyperParameter("weight", 0.01, 0.0, 100.0, "lambda: weight of the ring term"),
        HyperParameter("radius_init", 0.0, 0.0, 1e4, "initial R (0 = mean norm of the first batch)"),
    ]

    def __init__(self, embedding_dim: int, num_classes: int = 0, **hparams) -> None:
        super().__init__(embedding_dim, num_classes, **hparams)
        self.head = LinearClassifier(embedding_dim, num_classes)
        init = float(self.hparams["radius_init"])
        self.radius = nn.Parameter(torch.tensor(init if init > 0 else 1.0))
        self.register_buffer("radius_initialised", torch.tensor(init > 0))

    def compute(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        norms = embeddings.norm(dim=1)
        if not bool(self.radius_initialised):
            with torch.no_grad():
                self.radius.fill_(float(norms.mean()))
                self.radius_initialised.fill_(True)
        ce = self.cross_entropy(embeddings, labels)
        ring = 0.5 * (norms - self.radius).pow(2).mean()
        self.record(ce=ce, ring=ring, radius=self.radius)
        return ce + self.hparams["weight"] * ring
