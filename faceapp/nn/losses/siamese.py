"""DeepFace-style siamese verification head: logistic regression on the weighted |f1 - f2|."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceapp.nn.losses.base import FaceLoss, HyperParameter, register_loss, zero_loss
from faceapp.nn.miners import label_masks


@register_loss("siamese")
class SiameseVerificationLoss(FaceLoss):
    """DeepFace siamese head: p(same) = sigmoid(b + sum_k w_k |f1_k - f2_k|), binary cross-entropy.

    ``L = -mean over pairs [ t log p + (1 - t) log(1 - p) ]``, ``t = 1`` for the same identity.
    Every pair ``i < j`` of the batch (L2-normalised features) is classified same / different by logistic
    regression on the element-wise absolute difference with learned weights ``w`` (initialised negative:
    far apart = different) and bias ``b``. With ``balance`` the positive and negative pairs are averaged
    separately and the two means averaged. For verification fine-tuning of a trained backbone.
    Reference: Taigman, Yang, Ranzato, Wolf, "DeepFace: Closing the Gap to Human-Level Performance in
    Face Verification", CVPR 2014, Sec. 4.2.
    """

    requires_pk_sampler: ClassVar[bool] = True
    hyperparameters = [
        HyperParameter("balance", True, help="average positive and negative pairs separately"),
    ]

    def __init__(self, embedding_dim: int, num_classes: int = 0, **hparams) -> None:
        super().__init__(embedding_dim, num_classes, **hparams)
        scale = 4.0 / math.sqrt(embedding_dim)
        self.weight = nn.Parameter(torch.full((embedding_dim,), -scale))
        self.bias = nn.Parameter(torch.tensor(4.0))

    def pair_logits(self, first: Tensor, second: Tensor) -> Tensor:
        """Logit of "same identity" for each row pair of ``first`` and ``second`` ((N, D) each)."""
        with torch.autocast(device_type=first.device.type, enabled=False):
            diff = (F.normalize(first.float(), dim=1) - F.normalize(second.float(), dim=1)).abs()
            return diff @ self.weight + self.bias

    def compute(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        same, _ = label_masks(labels)
        a, b = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
        if a.numel() == 0:
            self.record(pos=0.0, neg=0.0)
            return zero_loss(embeddings)
        target = same[a, b].float()
        bce = F.binary_cross_entropy_with_logits(self.pair_logits(embeddings[a], embeddings[b]), target, reduction="none")
        positive = target.bool()
        pos = bce[positive].mean() if positive.any() else bce.sum() * 0.0
        neg = bce[~positive].mean() if (~positive).any() else bce.sum() * 0.0
        if self.hparams["balance"]:
            count = int(positive.any()) + int((~positive).any())
            loss = (pos + neg) / count
        else:
            loss = bce.mean()
        self.record(pos=pos, neg=neg)
        return loss
