"""Fine-tuning from a starting point: the classifier head from class centroids, BatchNorm and stage freezing.

A margin head initialised at random on top of good pretrained features produces huge, meaningless
gradients in the first steps and wrecks the features it should build on. Initialising each class's
weight with the normalised mean embedding of that class's training images (the "centroid" or
"weight imprinting" trick, Qi et al., "Low-Shot Learning with Imprinted Weights", CVPR 2018) starts the
classifier where the features already are; a lower learning rate for the backbone than for the head and
a few head-only epochs (the backbone frozen, BatchNorm statistics included) do the rest.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from faceapp.core.progress import CancelToken, Job, Progress
from faceapp.nn.heads import CosineClassifier
from faceapp.nn.losses import FaceLoss


def class_centroids(embed_fn, crops_of, labels: np.ndarray, num_classes: int, *, batch_size: int = 256,
                    cancel: CancelToken | None = None) -> Job[np.ndarray]:
    """Per-class mean of L2-normalised embeddings ``(num_classes, D)`` (each row normalised again).

    ``embed_fn(crops) -> (n, D)`` embeds BGR crops; ``crops_of(indices)`` returns them. Yields
    ``Progress("init", done, total)``. Classes without images keep a zero row (never happens after
    ``assemble``).
    """
    cancel = cancel or CancelToken()
    n = int(labels.size)
    sums: np.ndarray | None = None
    for start in range(0, n, batch_size):
        cancel.raise_if_cancelled("head initialisation")
        idx = np.arange(start, min(n, start + batch_size))
        emb = np.asarray(embed_fn(crops_of(idx)), dtype=np.float64)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        if sums is None:
            sums = np.zeros((num_classes, emb.shape[1]))
        np.add.at(sums, labels[idx], emb)
        yield Progress("init", int(idx[-1]) + 1, n, message="class centroids for the classifier head")
    assert sums is not None
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


def cosine_row_norm(lr: float, scale: float, max_turn: float = 0.02) -> float:
    """Row norm for centroid rows of a cosine head so one SGD step turns a row by at most ``max_turn`` rad.

    A normalised weight ``w`` turns by about ``lr * s * (1 - p) * sin(theta) / |w|^2`` per step (the gradient
    of ``s * cos`` is ``s * sin(theta) / |w|`` and the step is divided by ``|w|`` again when seen as an
    angle): with ArcFace's s = 64 and lr 0.05, a unit row moves ~3 rad in one step, which scrambles the
    centroids (measured: train accuracy 0.97 -> 0.90 and a rising loss over the first 40 head-only steps
    with unit rows, and with Xavier-sized rows, |w| ~ 0.2). ``sqrt(lr * s / max_turn)`` keeps it small.
    """
    return float(max(1.0, (lr * scale / max_turn) ** 0.5))


@torch.no_grad()
def init_head_from_centroids(loss: FaceLoss, centroids: np.ndarray, *, row_norm: float | None = None) -> bool:
    """Copy ``centroids`` into the loss's class weights (and centre-loss centres); False if it has none.

    Cosine heads (normalised weights) only use the direction: their rows get ``row_norm`` (see
    ``cosine_row_norm``; 1 when None). An affine softmax head keeps its current mean row norm (so the
    logits' scale is unchanged) and its bias is zeroed.
    """
    head = getattr(loss, "head", None)
    weight = getattr(head, "weight", None)
    done = False
    if isinstance(weight, torch.Tensor) and tuple(weight.shape) == centroids.shape:
        rows = torch.from_numpy(centroids).to(weight.device, weight.dtype)
        scale = (row_norm or 1.0) if isinstance(head, CosineClassifier) else weight.norm(dim=1).mean()
        weight.copy_(rows * scale)
        bias = getattr(head, "bias", None)
        if isinstance(bias, torch.Tensor):
            bias.zero_()
        done = True
    centers = getattr(loss, "centers", None)
    if isinstance(centers, torch.Tensor) and tuple(centers.shape) == centroids.shape:
        centers.copy_(torch.from_numpy(centroids).to(centers.device, centers.dtype))
        done = True
    return done


def set_batchnorm_eval(net: nn.Module) -> int:
    """Put every BatchNorm of ``net`` in eval mode (running statistics used and kept); returns how many."""
    count = 0
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            count += 1
    return count
