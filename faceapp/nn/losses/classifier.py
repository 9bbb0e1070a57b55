"""Base of the losses that own a classifier over the training identities (softmax family and margins).

Such a loss exposes ``logits(embeddings)`` (the classifier's scores WITHOUT any margin, for training
accuracy) and ``class_weights`` (one direction per identity, for the loss-geometry view).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceapp.nn.heads import CosineClassifier
from faceapp.nn.losses.base import FaceLoss


class ClassifierLoss(FaceLoss):
    """Cross-entropy over ``num_classes`` identities of a classifier the loss owns (``self.head``)."""

    needs_classes: ClassVar[bool] = True
    head: nn.Module

    def class_logits(self, embeddings: Tensor) -> Tensor:
        """``(N, C)`` scores without margin of float32 embeddings; subclasses define it."""
        return self.head(embeddings)

    def margin_logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The scores fed to the cross-entropy (margins applied to the target class); default: no margin."""
        return self.class_logits(embeddings)

    def cross_entropy(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Mean softmax cross-entropy of ``margin_logits``."""
        return F.cross_entropy(self.margin_logits(embeddings, labels), labels)

    def compute(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        ce = self.cross_entropy(embeddings, labels)
        self.record(ce=ce)
        return ce

    def logits(self, embeddings: Tensor) -> Tensor:
        """Classifier scores without margin ``(N, C)``: ``argmax`` is the predicted identity."""
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            return self.class_logits(embeddings.float())

    @property
    def class_weights(self) -> Tensor:
        """``(C, D)`` detached copy of the class weight vectors (row j = direction of identity j)."""
        return self.head.weight.detach().clone()


class AngularMarginLoss(ClassifierLoss):
    """Softmax on cosines ``cos(theta_j)`` of a bias-free normalised classifier, with a margin on the
    target class: logits ``scale_i * cos(theta_ij)`` except ``scale_i * target(cos(theta_iy))``.

    This is insightface's "margin as a transform of the target logit" shape; SphereFace, CosFace and
    ArcFace differ only in ``target_cosine`` and in the scale (``|x|`` or a fixed ``s``).
    """

    def __init__(self, embedding_dim: int, num_classes: int = 0, **hparams) -> None:
        super().__init__(embedding_dim, num_classes, **hparams)
        self.head = CosineClassifier(embedding_dim, num_classes)

    def row_scale(self, embeddings: Tensor) -> Tensor | float:
        """Multiplier of every logit of a row: the feature norm ``|x_i|`` by default ((N, 1))."""
        return embeddings.norm(dim=1, keepdim=True)

    def target_cosine(self, cos_target: Tensor) -> Tensor:
        """Margin transform of the target-class cosine ``(N, 1)``; default: none."""
        return cos_target

    def class_logits(self, embeddings: Tensor) -> Tensor:
        return self.head(embeddings) * self.row_scale(embeddings)

    def margin_logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        cos = self.head(embeddings)
        index = labels.view(-1, 1)
        target = self.target_cosine(cos.gather(1, index))
        return cos.scatter(1, index, target) * self.row_scale(embeddings)
