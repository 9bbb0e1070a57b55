"""Distillation terms recomputed by hand (numpy), their projection, weights and errors, and a distiller
trained beside a margin loss of the zoo."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceapp.nn.losses import LossConfigError, create_loss
from faceapp.nn.losses.distill import (DISTILLERS, Distillation, create_distiller, describe_distillers,
                                       split_distill_params)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _batch(n: int = 6, ds: int = 8, dt: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, ds, generator=g), torch.nn.functional.normalize(torch.randn(n, dt, generator=g), dim=1)


def test_registry_lists_both_distillers() -> None:
    assert DISTILLERS.names() == ["embed", "relational"]
    described = {d["name"]: d for d in describe_distillers()}
    assert [h["name"] for h in described["relational"]["hyperparameters"]] == ["criterion", "beta", "center"]
    assert described["relational"]["hyperparameters"][0]["choices"] == ["mse", "smooth_l1"]


def test_embed_term_equal_dims_is_one_minus_cosine_without_parameters() -> None:
    s, t = _batch()
    term = create_distiller("embed", 8, 8)
    assert sum(p.numel() for p in term.parameters()) == 0
    expected = np.mean(1.0 - np.sum(_unit(s.numpy()) * _unit(t.numpy()), axis=1))
    assert float(term(s, t)) == pytest.approx(expected, abs=1e-6)
    assert float(term(t * 3.0, t)) == pytest.approx(0.0, abs=1e-6)      # scale-free: only directions count


def test_embed_term_projects_when_dims_differ_and_the_projection_learns() -> None:
    s, t = _batch(n=16, ds=4, dt=10)
    term = create_distiller("embed", 4, 10)
    weight = term.projection.weight
    assert tuple(weight.shape) == (10, 4)
    projected = s.numpy() @ weight.detach().numpy().T
    expected = np.mean(1.0 - np.sum(_unit(projected) * _unit(t.numpy()), axis=1))
    value = term(s, t)
    assert float(value.detach()) == pytest.approx(expected, abs=1e-6)
    value.backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    # the projection alone (student fixed) fits a teacher that is a linear image of the student
    true_map = torch.randn(10, 4, generator=torch.Generator().manual_seed(3))
    teacher = torch.nn.functional.normalize(s @ true_map.T, dim=1)
    opt = torch.optim.Adam(term.parameters(), lr=0.05)
    start = float(term(s, teacher).detach())
    for _ in range(300):
        opt.zero_grad()
        loss = term(s, teacher)
        loss.backward()
        opt.step()
    assert start > 0.2 and float(term(s, teacher).detach()) < 0.01


def _cos(x: np.ndarray) -> np.ndarray:
    u = _unit(x)
    return u @ u.T


def test_relational_mse_over_off_diagonal_pairs() -> None:
    s, t = _batch(n=5, ds=6, dt=12)          # sizes may differ: no projection
    term = create_distiller("relational", 6, 12)
    assert sum(p.numel() for p in term.parameters()) == 0
    diff = _cos(s.numpy()) - _cos(t.numpy())
    off = ~np.eye(5, dtype=bool)
    assert float(term(s, t)) == pytest.approx(np.mean(diff[off] ** 2), abs=1e-6)
    assert np.abs(np.diag(diff)).max() < 1e-5          # the diagonal would add nothing but zeros


def test_relational_smooth_l1_by_hand() -> None:
    s, t = _batch(n=7, ds=5, dt=5, seed=2)
    beta = 0.05
    term = create_distiller("relational", 5, 5, criterion="smooth_l1", beta=beta)
    d = np.abs(_cos(s.numpy()) - _cos(t.numpy()))[~np.eye(7, dtype=bool)]
    expected = np.mean(np.where(d < beta, 0.5 * d ** 2 / beta, d - 0.5 * beta))
    assert float(term(s, t)) == pytest.approx(expected, abs=1e-6)
    assert float(term(t, t)) == pytest.approx(0.0, abs=1e-7)


def test_relational_single_image_is_a_connected_zero() -> None:
    s = torch.randn(1, 4, requires_grad=True)
    value = create_distiller("relational", 4, 4)(s, torch.randn(1, 4))
    assert float(value.detach()) == 0.0
    value.backward()
    assert s.grad is not None


def test_distillation_weights_the_terms_and_names_them() -> None:
    s, t = _batch(n=8, ds=4, dt=6)
    dist = Distillation(4, 6, {"embed": 0.5, "relational": 2.0}, {"relational.criterion": "smooth_l1"})
    with torch.no_grad():
        total, terms = dist(s, t)
        embed, rel = dist.terms["embed"](s, t), dist.terms["relational"](s, t)
    assert set(terms) == {"distill_embed", "distill_relational"}
    assert float(terms["distill_embed"]) == pytest.approx(float(embed))
    assert float(total) == pytest.approx(0.5 * float(embed) + 2.0 * float(rel), abs=1e-6)
    assert dist.hparams == {"embed.weight": 0.5, "relational.weight": 2.0, "relational.criterion": "smooth_l1",
                            "relational.beta": 0.1, "relational.center": False}
    only = Distillation(4, 6, {"embed": 0.0, "relational": 1.0})
    assert list(only.terms) == ["relational"] and sum(p.numel() for p in only.parameters()) == 0


@pytest.mark.parametrize("weights, params, match", [
    ({"embed": 0.0, "relational": 0.0}, {}, "positive weight"),
    ({"attention": 1.0}, {}, "unknown distiller 'attention'"),
    ({"embed": -1.0}, {}, "must be a number >= 0"),
    ({"relational": 1.0}, {"relational.criterion": "l3"}, "must be one of mse, smooth_l1"),
    ({"relational": 1.0}, {"relational.gamma": 1}, "unknown hyper-parameter"),
    ({"relational": 1.0}, {"criterion": "mse"}, "expected DISTILLER.NAME"),
    ({"relational": 1.0}, {"embed.x": 1}, "given for embed, whose weight is 0"),
])
def test_distillation_refuses_bad_settings(weights: dict, params: dict, match: str) -> None:
    with pytest.raises(LossConfigError, match=match):
        Distillation(4, 6, weights, params)


def test_shape_errors_name_the_distiller() -> None:
    term = create_distiller("embed", 4, 6)
    with pytest.raises(LossConfigError, match="distiller embed: teacher embeddings must have shape"):
        term(torch.randn(3, 4), torch.randn(3, 4))
    with pytest.raises(LossConfigError, match="student embeddings must have shape"):
        term(torch.randn(3, 5), torch.randn(3, 6))
    assert split_distill_params({"embed.x": 1, "relational.beta": 0.2}) == {"embed": {"x": 1},
                                                                             "relational": {"beta": 0.2}}


def test_half_precision_inputs_compute_in_float32() -> None:
    s, t = _batch(n=6, ds=8, dt=8)
    dist = Distillation(8, 8, {"embed": 1.0, "relational": 1.0})
    full, _ = dist(s, t)
    half, _ = dist(s.half(), t.half())
    assert half.dtype == torch.float32 and float(half) == pytest.approx(float(full), abs=2e-3)


def test_combined_with_a_margin_loss_the_student_approaches_the_teacher() -> None:
    """ArcFace + distillation on one optimiser: the student's pairwise cosines move to the teacher's while
    the classifier trains too (the brief's "combinable with any loss of the zoo")."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(32) % 4
    latent = torch.randn(4, 6, generator=g)[labels] + 0.5 * torch.randn(32, 6, generator=g)   # 4 people
    x = latent @ torch.randn(6, 12, generator=g)                                            # the "images"
    teacher = torch.nn.functional.normalize(latent @ torch.randn(6, 16, generator=g), dim=1)
    student = torch.nn.Linear(12, 6)
    arc = create_loss("arcface", embedding_dim=6, num_classes=4, s=16.0, m=0.2)
    dist = Distillation(6, 16, {"embed": 1.0, "relational": 1.0})
    opt = torch.optim.Adam([*student.parameters(), *arc.parameters(), *dist.parameters()], lr=0.02)

    def gap() -> float:
        with torch.no_grad():
            return float(np.abs(_cos(student(x).numpy()) - _cos(teacher.numpy())).mean())

    before = gap()
    for _ in range(300):
        opt.zero_grad()
        emb = student(x)
        extra, terms = dist(emb, teacher)
        (arc(emb, labels) + extra).backward()
        opt.step()
    assert all(p.grad is not None for p in dist.parameters())
    assert gap() < 0.5 * before, (before, gap())


def test_centred_relational_ignores_a_teacher_wide_offset() -> None:
    """A teacher whose every embedding shares a large common direction (strangers at cosine ~0.8, like dlib)
    and a student with the same structure around the origin: far apart uncentred, equal once both sides are
    centred on their batch mean; and the centred value is the hand-computed one."""
    torch.manual_seed(0)
    structure = torch.nn.functional.normalize(torch.randn(16, 8), dim=1)
    offset = torch.zeros(8)
    offset[0] = 2.0
    teacher = structure + offset                      # every pair of rows now has cosine ~0.8
    plain = create_distiller("relational", 8, 8)
    centred = create_distiller("relational", 8, 8, center=True)
    assert plain(structure, teacher).item() > 0.3
    assert centred(structure, teacher).item() < 0.05
    s = torch.nn.functional.normalize(structure, dim=1)
    t = torch.nn.functional.normalize(teacher, dim=1)
    s, t = s - s.mean(0), t - t.mean(0)
    s, t = torch.nn.functional.normalize(s, dim=1), torch.nn.functional.normalize(t, dim=1)
    off = ~torch.eye(16, dtype=torch.bool)
    expected = ((s @ s.T - t @ t.T)[off] ** 2).mean()
    assert centred(structure, teacher).item() == pytest.approx(expected.item(), rel=1e-5)
