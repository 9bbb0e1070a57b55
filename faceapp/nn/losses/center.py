"""Center loss (+ softmax cross-entropy) with centres updated by the paper's rule during forward."""

from __future__ import annotations

import torch
from torch import Tensor

from faceapp.nn.heads import LinearClassifier
from faceapp.nn.losses.base import HyperParameter, register_loss
from faceapp.nn.losses.classifier import ClassifierLoss


@register_loss("center")
class CenterLoss(ClassifierLoss):
    """Center loss: softmax cross-entropy + weight/2 * mean squared distance of features to their class centre.

    ``L = CE(W x + b, y) + lambda * 1/(2N) sum_i |x_i - c_{y_i}|^2`` on the raw embeddings.
    The centres are a buffer (not trained by the optimiser): after each training forward they move by the
    paper's rule ``c_j <- c_j - alpha * sum_{i: y_i=j} (c_j - x_i) / (1 + n_j)``, under ``torch.no_grad()``,
    so one optimiser over ``backbone + loss.parameters()`` trains it. The paper writes ``1/2 sum_i``; like
    the authors' Caffe layer (``dot / M / 2``) the term is averaged over the batch (paper: lambda = 0.003).
    Reference: Wen et al., "A Discriminative Feature Learning Approach for Deep Face Recognition", ECCV 2016.
    """

    hyperparameters = [
        HyperParameter("weight", 0.01, 0.0, 100.0, "lambda: weight of the center term"),
        HyperParameter("alpha", 0.5, 0.0, 1.0, "learning rate of the centres (paper's alpha)"),
    ]

    def __init__(self, embedding_dim: int, num_classes: int = 0, **hparams) -> None:
        super().__init__(embedding_dim, num_classes, **hparams)
        self.head = LinearClassifier(embedding_dim, num_classes)
        self.register_buffer("centers", torch.zeros(num_classes, embedding_dim))

    def compute(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        ce = self.cross_entropy(embeddings, labels)
        own_centers = self.centers.index_select(0, labels)
        center = 0.5 * (embeddings - own_centers).pow(2).sum(dim=1).mean()
        if self.training:
            self.update_centers(embeddings.detach(), labels)
        self.record(ce=ce, center=center)
        return ce + self.hparams["weight"] * center

    @torch.no_grad()
    def update_centers(self, embeddings: Tensor, labels: Tensor) -> None:
        """One step of the paper's centre update for the classes present in the batch."""
        sums = torch.zeros_like(self.centers).index_add_(0, labels, embeddings.to(self.centers.dtype))
        counts = torch.zeros(self.num_classes, device=labels.device, dtype=self.centers.dtype)
        counts.index_add_(0, labels, torch.ones_like(labels, dtype=self.centers.dtype))
        delta = (counts[:, None] * self.centers - sums) / (1.0 + counts[:, None])
        self.centers -= self.hparams["alpha"] * delta
