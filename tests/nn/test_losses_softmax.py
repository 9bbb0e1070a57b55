"""Softmax, L2-softmax, center loss and ring loss recomputed by hand (numpy float64 loops)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from faceapp.nn.losses import L2SoftmaxLoss, create_loss


def batch(n: int = 10, d: int = 4, c: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * 2.0, torch.arange(n) % c


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    total = 0.0
    for row, y in zip(logits, labels):
        total += -math.log(math.exp(row[y]) / sum(math.exp(v) for v in row))
    return total / len(labels)


def affine_logits(loss, x: np.ndarray) -> np.ndarray:
    w = loss.head.weight.detach().double().numpy()
    b = loss.head.bias.detach().double().numpy()
    return np.array([[w[j] @ xi + b[j] for j in range(len(w))] for xi in x])


def test_softmax_by_hand():
    x, y = batch()
    loss = create_loss("softmax", embedding_dim=4, num_classes=3)
    expected = cross_entropy(affine_logits(loss, x.double().numpy()), y.numpy())
    assert loss(x, y).item() == pytest.approx(expected, rel=1e-6)
    assert torch.allclose(loss.logits(x), loss.head(x))
    assert loss.class_weights.shape == (3, 4)


def test_l2_softmax_by_hand_and_alpha_bound():
    x, y = batch(seed=1)
    loss = create_loss("l2_softmax", embedding_dim=4, num_classes=3, alpha=5.0)
    xs = x.double().numpy()
    projected = np.array([5.0 * xi / np.linalg.norm(xi) for xi in xs])
    assert loss(x, y).item() == pytest.approx(cross_entropy(affine_logits(loss, projected), y.numpy()), rel=1e-6)
    assert not any(p is loss.alpha for p in loss.parameters()), "alpha is fixed unless learn_alpha"
    learned = create_loss("l2_softmax", embedding_dim=4, num_classes=3, learn_alpha=True)
    assert any(p is learned.alpha for p in learned.parameters())
    assert L2SoftmaxLoss.alpha_lower_bound(10000, 0.9) == pytest.approx(math.log(0.9 * 9998 / 0.1))


def test_center_loss_by_hand_and_paper_update_rule():
    x, y = batch(n=7, seed=2)
    loss = create_loss("center", embedding_dim=4, num_classes=3, weight=0.3, alpha=0.5)
    with torch.no_grad():
        loss.centers.copy_(torch.randn(3, 4))
    xs, ys = x.double().numpy(), y.numpy()
    c = loss.centers.double().numpy().copy()
    ce = cross_entropy(affine_logits(loss, xs), ys)
    center = sum(0.5 * np.sum((xs[i] - c[ys[i]]) ** 2) for i in range(len(ys))) / len(ys)
    assert loss(x, y).item() == pytest.approx(ce + 0.3 * center, rel=1e-6)
    assert loss.last_terms == {"ce": pytest.approx(ce, rel=1e-6), "center": pytest.approx(center, rel=1e-6)}
    for j in range(3):  # c_j <- c_j - alpha * sum_{y_i = j}(c_j - x_i) / (1 + n_j)
        members = [xs[i] for i in range(len(ys)) if ys[i] == j]
        delta = sum(c[j] - xi for xi in members) / (1 + len(members))
        c[j] = c[j] - 0.5 * delta
    assert np.allclose(loss.centers.double().numpy(), c, atol=1e-6)
    assert "centers" in loss.state_dict() and not any(p is loss.centers for p in loss.parameters())


def test_center_loss_centres_frozen_in_eval_and_move_to_class_means():
    loss = create_loss("center", embedding_dim=2, num_classes=2, alpha=0.5)
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, -2.0]])
    y = torch.tensor([0, 0, 1])
    loss.eval()
    loss(x, y)
    assert torch.count_nonzero(loss.centers) == 0
    loss.train()
    for _ in range(40):
        loss(x, y)
    assert torch.allclose(loss.centers, torch.tensor([[2.0, 0.0], [0.0, -2.0]]), atol=1e-4)


def test_ring_loss_by_hand_with_radius_from_first_batch():
    x, y = batch(seed=3)
    loss = create_loss("ring", embedding_dim=4, num_classes=3, weight=0.2)
    xs = x.double().numpy()
    norms = np.linalg.norm(xs, axis=1)
    radius = norms.mean()
    ring = sum(0.5 * (n - radius) ** 2 for n in norms) / len(norms)
    expected = cross_entropy(affine_logits(loss, xs), y.numpy()) + 0.2 * ring
    assert loss(x, y).item() == pytest.approx(expected, rel=1e-5)
    assert loss.radius.item() == pytest.approx(radius, rel=1e-6)
    assert any(p is loss.radius for p in loss.parameters()), "R is learned by the optimiser"
    fixed = create_loss("ring", embedding_dim=4, num_classes=3, radius_init=2.5)
    fixed(x, y)
    assert fixed.radius.item() == 2.5
    # the gradient of the ring term pulls R towards the mean norm
    loss.zero_grad()
    with torch.no_grad():
        loss.radius.fill_(0.5)
    loss(x, y).backward()
    assert loss.radius.grad.item() == pytest.approx(-0.2 * np.mean(norms - 0.5), rel=1e-5)
