"""Softmax family: plain softmax, "modified softmax" (SphereFace's m=1 baseline) and L2-softmax."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceapp.nn.heads import LinearClassifier
from faceapp.nn.losses.base import HyperParameter, register_loss
from faceapp.nn.losses.classifier import AngularMarginLoss, ClassifierLoss


@register_loss("softmax")
class SoftmaxLoss(ClassifierLoss):
    """Softmax cross-entropy over a linear classifier W x + b (DeepFace, DeepID).

    ``L = -1/N sum_i log( exp(W_{y_i} x_i + b_{y_i}) / sum_j exp(W_j x_i + b_j) )`` on the raw embeddings.
    References: Taigman et al., "DeepFace", CVPR 2014; Sun et al., "Deep Learning Face Representation
    from Predicting 10,000 Classes" (DeepID), CVPR 2014.
    """

    def __init__(self, embedding_dim: int, num_classes: int = 0, **hparams) -> None:
        super().__init__(embedding_dim, num_classes, **hparams)
        self.head = LinearClassifier(embedding_dim, num_classes)


@register_loss("modified_softmax")
class ModifiedSoftmaxLoss(AngularMarginLoss):
    """Modified softmax: normalised class weights, no bias, logits |x| cos(theta_j) (SphereFace's m=1).

    ``L = -1/N sum_i log( exp(|x_i| cos theta_{y_i}) / sum_j exp(|x_i| cos theta_j) )`` with
    ``cos theta_j = W_j.x / (|W_j||x|)``: the decision boundary depends on angles only.
    Reference: Liu et al., "SphereFace: Deep Hypersphere Embedding for Face Recognition", CVPR 2017, Sec. 3.1.
    """


@register_loss("l2_softmax")
class L2SoftmaxLoss(ClassifierLoss):
    """L2-constrained softmax: features projected onto a sphere of radius alpha before W x + b.

    ``L = softmax cross-entropy of W (alpha x/|x|) + b``. The paper's lower bound for a class probability
    ``p`` over ``C`` classes is ``alpha >= log(p (C - 2) / (1 - p))`` (about 11.4 for p=0.9, C=10,000).
    Reference: Ranjan, Castillo, Chellappa, "L2-constrained Softmax Loss for Discriminative Face
    Verification", arXiv:1703.09507, 2017.
    """

    hyperparameters = [
        HyperParameter("alpha", 16.0, 0.1, 1000.0, "radius of the feature sphere (scale of the logits)"),
        HyperParameter("learn_alpha", False, help="learn alpha with the network (initialised at alpha)"),
    ]

    def __init__(self, embedding_dim: int, num_classes: int = 0, **hparams) -> None:
        super().__init__(embedding_dim, num_classes, **hparams)
        self.head = LinearClassifier(embedding_dim, num_classes)
        alpha = torch.tensor(float(self.hparams["alpha"]))
        if self.hparams["learn_alpha"]:
            self.alpha = nn.Parameter(alpha)
        else:
            self.register_buffer("alpha", alpha)

    def class_logits(self, embeddings: Tensor) -> Tensor:
        return self.head(self.alpha * F.normalize(embeddings, dim=1))

    @staticmethod
    def alpha_lower_bound(num_classes: int, p: float = 0.9) -> float:
        """The paper's smallest useful alpha for class probability ``p`` over ``num_classes`` identities."""
        return math.log(p * max(num_classes - 2, 1) / (1.0 - p))
