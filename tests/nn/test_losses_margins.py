"""CosFace, ArcFace, SphereFace recomputed by hand (numpy, float64 loops) and against
pytorch-metric-learning at matching hyper-parameters (PML's ArcFace margin is in DEGREES)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning import losses as pml

from faceapp.nn.losses import create_loss
from faceapp.nn.losses.margins import chebyshev_cos_multiple, sphereface_lambda, sphereface_psi


def batch(n: int = 9, d: int = 6, c: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * 3.0, torch.randint(0, c, (n,), generator=g)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    total = 0.0
    for row, y in zip(logits, labels):
        top = row.max()
        total += -(row[y] - top - math.log(sum(math.exp(v - top) for v in row)))
    return total / len(labels)


def cosines(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    out = np.zeros((len(x), len(w)))
    for i, xi in enumerate(x):
        for j, wj in enumerate(w):
            out[i, j] = xi @ wj / (np.linalg.norm(xi) * np.linalg.norm(wj))
    return out


def by_hand(loss, x: torch.Tensor, y: torch.Tensor, target, scale) -> float:
    """Cross-entropy of logits scale_i * cos_ij with the target cosine replaced by target(cos)."""
    xs, ys = x.double().numpy(), y.numpy()
    cos = cosines(xs, loss.class_weights.double().numpy())
    logits = cos.copy()
    for i, yi in enumerate(ys):
        logits[i, yi] = target(cos[i, yi])
        logits[i] *= scale(xs[i])
    return cross_entropy(logits, ys)


def copy_weights_to_pml(ours, theirs) -> None:
    with torch.no_grad():
        theirs.W.copy_(ours.class_weights.t())


def test_cosface_by_hand_and_against_pml():
    x, y = batch()
    loss = create_loss("cosface", embedding_dim=6, num_classes=5, s=30.0, m=0.35)
    expected = by_hand(loss, x, y, lambda c: c - 0.35, lambda xi: 30.0)
    assert loss(x, y).item() == pytest.approx(expected, rel=1e-5)
    theirs = pml.CosFaceLoss(num_classes=5, embedding_size=6, margin=0.35, scale=30.0)
    copy_weights_to_pml(loss, theirs)
    assert loss(x, y).item() == pytest.approx(theirs(x, y).item(), rel=1e-5)
    assert loss.last_terms == {"ce": pytest.approx(expected, rel=1e-5)}


@pytest.mark.parametrize("easy_margin", [False, True])
def test_arcface_by_hand(easy_margin):
    x, y = batch(seed=1)
    m, s = 0.5, 16.0
    loss = create_loss("arcface", embedding_dim=6, num_classes=5, s=s, m=m, easy_margin=easy_margin)

    def target(c: float) -> float:
        theta = math.acos(c)
        if easy_margin:
            return math.cos(theta + m) if c > 0 else c
        return math.cos(theta + m) if theta + m <= math.pi else c - m * math.sin(m)

    assert loss(x, y).item() == pytest.approx(by_hand(loss, x, y, target, lambda xi: s), rel=1e-5)


def test_arcface_matches_pml_with_margin_in_degrees():
    x, y = batch(n=16, seed=2)
    loss = create_loss("arcface", embedding_dim=6, num_classes=5, s=64.0, m=0.5)
    theirs = pml.ArcFaceLoss(num_classes=5, embedding_size=6, margin=math.degrees(0.5), scale=64.0)
    copy_weights_to_pml(loss, theirs)
    assert loss(x, y).item() == pytest.approx(theirs(x, y).item(), rel=1e-5)


def test_arcface_keeps_the_target_logit_decreasing_past_pi_minus_m():
    """Beyond theta = pi - m the target is cos(theta) - m sin(m), not cos(theta + m) (which rises again)."""
    loss = create_loss("arcface", embedding_dim=2, num_classes=2, m=0.5)
    theta = torch.linspace(0.0, math.pi, 400, dtype=torch.float64).float()
    target = loss.target_cosine(torch.cos(theta)[:, None]).squeeze(1)
    assert torch.all(target[1:] <= target[:-1] + 1e-6)
    beyond = theta > math.pi - 0.5 + 1e-3
    assert torch.allclose(target[beyond], torch.cos(theta[beyond]) - 0.5 * math.sin(0.5), atol=1e-5)
    assert not torch.allclose(target[beyond], torch.cos(theta[beyond] + 0.5), atol=1e-3)


def test_psi_is_cos_m_theta_then_monotonic():
    theta = torch.linspace(0.0, math.pi, 721, dtype=torch.float64)
    cos = torch.cos(theta)
    for m in (1, 2, 3, 4):
        assert torch.allclose(chebyshev_cos_multiple(cos, m), torch.cos(m * theta), atol=1e-9)
        psi = sphereface_psi(cos, m)
        assert torch.all(psi[1:] <= psi[:-1] + 1e-9), m
        first = theta <= math.pi / m
        assert torch.allclose(psi[first], torch.cos(m * theta[first]), atol=1e-9)
        assert psi[-1].item() == pytest.approx(-2 * m + 1, abs=1e-9)  # psi(pi) = (-1)^(m-1) cos(m pi) - 2(m-1)


def test_sphereface_by_hand_with_annealing_lambda():
    x, y = batch(seed=3)
    loss = create_loss("sphereface", embedding_dim=6, num_classes=5, m=4)
    loss.on_step(50)
    lam = max(5.0, 1000.0 * (1 + 0.12 * 50) ** -1)
    assert loss.lam == pytest.approx(lam)

    def target(c: float) -> float:
        theta = math.acos(c)
        k = min(int(math.floor(4 * theta / math.pi)), 3)
        psi = (-1) ** k * math.cos(4 * theta) - 2 * k
        return (lam * c + psi) / (1 + lam)

    expected = by_hand(loss, x, y, target, lambda xi: float(np.linalg.norm(xi)))
    assert loss(x, y).item() == pytest.approx(expected, rel=1e-5)
    assert loss.last_terms["lambda"] == pytest.approx(lam)


def test_sphereface_schedule_and_step_counter():
    assert sphereface_lambda(0, 1000, 0.12, 1, 5) == 1000
    assert sphereface_lambda(10, 1000, 0.12, 1, 5) == pytest.approx(1000 / 2.2)
    assert sphereface_lambda(10**6, 1000, 0.12, 1, 5) == 5
    loss = create_loss("sphereface", embedding_dim=6, num_classes=5)
    x, y = batch()
    loss(x, y)
    loss(x, y)
    assert int(loss.step) == 2, "each training forward advances the schedule"
    loss.eval()
    loss(x, y)
    assert int(loss.step) == 2, "evaluation does not"
    loss.on_step(7)
    assert loss.lam == pytest.approx(1000 / (1 + 0.12 * 7))
    assert "step" in loss.state_dict(), "the schedule position is saved with checkpoints"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PML's scipy.special.binom on tensors, NumPy 2
def test_sphereface_without_annealing_matches_pml():
    x, y = batch(n=16, seed=4)
    loss = create_loss("sphereface", embedding_dim=6, num_classes=5, m=4, lambda_base=0.0, lambda_min=0.0)
    theirs = pml.SphereFaceLoss(num_classes=5, embedding_size=6, margin=4, scale=1)
    copy_weights_to_pml(loss, theirs)
    assert loss(x, y).item() == pytest.approx(theirs(x, y).item(), rel=1e-5)


def test_modified_softmax_is_sphereface_with_m_1():
    x, y = batch(seed=5)
    modified = create_loss("modified_softmax", embedding_dim=6, num_classes=5)
    sphere = create_loss("sphereface", embedding_dim=6, num_classes=5, m=1)
    sphere.load_state_dict({**modified.state_dict(), "step": torch.tensor(0)})
    expected = by_hand(modified, x, y, lambda c: c, lambda xi: float(np.linalg.norm(xi)))
    assert modified(x, y).item() == pytest.approx(expected, rel=1e-5)
    assert sphere(x, y).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["cosface", "arcface", "sphereface", "modified_softmax"])
def test_logits_have_no_margin_and_weights_are_per_class(name):
    x, y = batch()
    loss = create_loss(name, embedding_dim=6, num_classes=5)
    logits = loss.logits(x)
    assert logits.shape == (9, 5)
    assert loss.class_weights.shape == (5, 6)
    cos = torch.nn.functional.normalize(x) @ torch.nn.functional.normalize(loss.class_weights).t()
    assert torch.equal(logits.argmax(1), cos.argmax(1))
    assert loss.margin_logits(x, y).gather(1, y[:, None]).lt(logits.gather(1, y[:, None]) + 1e-5).all()
