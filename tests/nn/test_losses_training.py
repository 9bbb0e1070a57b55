"""Every loss trains: it decreases on a small synthetic problem and the embeddings it learns separate
unseen samples; gradients are finite at fp32 (also at the degenerate points) and under bf16 autocast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from faceapp.nn.losses import create_loss, list_losses

ALL = sorted(list_losses())


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and much faster when other jobs share the CPUs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
CLASSES, PER_CLASS, IN_DIM, EMB_DIM = 6, 8, 20, 16


def gaussian_identities(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A P x K batch: 6 identities (fixed random means) x 8 noisy samples each."""
    means = torch.randn(CLASSES, IN_DIM, generator=torch.Generator().manual_seed(123))
    labels = torch.arange(CLASSES).repeat_interleave(PER_CLASS)
    noise = torch.randn(len(labels), IN_DIM, generator=torch.Generator().manual_seed(seed))
    return means[labels] + 1.5 * noise, labels


def small_net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(IN_DIM, 32), torch.nn.ReLU(), torch.nn.Linear(32, EMB_DIM))


@torch.no_grad()
def nearest_neighbour_accuracy(net, train, test) -> float:
    """Held-out samples labelled by their most cosine-similar training sample."""
    (x_train, y_train), (x_test, y_test) = train, test
    similarity = F.normalize(net(x_test)) @ F.normalize(net(x_train)).t()
    return (y_train[similarity.argmax(1)] == y_test).float().mean().item()


@pytest.mark.parametrize("name", ALL)
def test_loss_decreases_and_learns_separable_embeddings(name):
    torch.manual_seed(0)
    train, test = gaussian_identities(0), gaussian_identities(1)
    net = small_net()
    loss = create_loss(name, embedding_dim=EMB_DIM, num_classes=CLASSES)
    optimiser = torch.optim.Adam([*net.parameters(), *loss.parameters()], lr=0.01)
    steps = 25

    def evaluate() -> float:  # eval mode: no centre update, no schedule advance; lambda pinned to the end
        loss.eval()
        loss.on_step(steps)
        with torch.no_grad():
            value = loss(net(train[0]), train[1]).item()
        loss.train()
        return value

    before, accuracy_before = evaluate(), nearest_neighbour_accuracy(net, train, test)
    for step in range(steps):
        loss.on_step(step)
        value = loss(net(train[0]), train[1])
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
    after, accuracy_after = evaluate(), nearest_neighbour_accuracy(net, train, test)
    assert after < 0.5 * before, f"{name}: {before:.4f} -> {after:.4f}"
    assert accuracy_after >= accuracy_before + 0.1, f"{name}: held-out 1-NN {accuracy_before:.2f} -> {accuracy_after:.2f}"
    assert set(loss.last_terms) and all(v == v for v in loss.last_terms.values())


def finite_gradients(module: torch.nn.Module) -> bool:
    grads = [p.grad for p in module.parameters() if p.requires_grad]
    return all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", ALL)
def test_gradients_are_finite_under_bf16_autocast(name):
    torch.manual_seed(1)
    x, y = gaussian_identities(2)
    net = small_net()
    loss = create_loss(name, embedding_dim=EMB_DIM, num_classes=CLASSES)
    loss(net(x).detach(), y)  # lazy initialisations (ring radius) happen outside autocast too
    with torch.autocast("cpu", dtype=torch.bfloat16):
        embeddings = net(x)
        assert embeddings.dtype == torch.bfloat16
        value = loss(embeddings, y)
    assert value.dtype == torch.float32, "margins and the loss are computed in float32"
    value.backward()
    assert torch.isfinite(value)
    assert finite_gradients(net), name
    if name != "ring":  # the ring's first call initialised R from the batch: its gradient may be exactly zero
        assert all(p.grad is not None for p in loss.parameters()), name
    assert all(torch.isfinite(p.grad).all() for p in loss.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", ALL)
def test_half_precision_embeddings_give_a_float32_loss(name):
    """What a CUDA-AMP backbone hands over: float16 embeddings (the loss casts them to float32)."""
    x, y = gaussian_identities(4)
    embeddings = (x[:, :EMB_DIM] * 3.0).half().requires_grad_(True)
    loss = create_loss(name, embedding_dim=EMB_DIM, num_classes=CLASSES)
    value = loss(embeddings, y)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert embeddings.grad.dtype == torch.float16 and torch.isfinite(embeddings.grad).all()


GEOMETRY = ["softmax", "modified_softmax", "sphereface", "cosface", "arcface", "center"]


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", GEOMETRY)
def test_geometry_view_losses_train_with_2d_and_3d_embeddings(name, dim):
    """The loss-geometry view trains these with 2-D/3-D embeddings and draws the class weights."""
    torch.manual_seed(0)
    x, y = gaussian_identities(0)
    net = torch.nn.Sequential(torch.nn.Linear(IN_DIM, 32), torch.nn.ReLU(), torch.nn.Linear(32, dim))
    loss = create_loss(name, embedding_dim=dim, num_classes=CLASSES)
    optimiser = torch.optim.Adam([*net.parameters(), *loss.parameters()], lr=0.02)
    values = []
    for step in range(30):
        loss.on_step(step)
        value = loss(net(x), y)
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        values.append(value.item())
    assert sum(values[-5:]) < 0.8 * sum(values[:5]), f"{name} {dim}-D: {values[0]:.3f} -> {values[-1]:.3f}"
    assert loss.class_weights.shape == (CLASSES, dim)


@pytest.mark.parametrize("name", ALL)
def test_gradients_are_finite_at_degenerate_points(name):
    """Embeddings equal to a class weight (cos = 1, acos' infinite), opposite to it (theta = pi),
    duplicated (distance 0) and all-zero (no direction)."""
    loss = create_loss(name, embedding_dim=4, num_classes=3)
    rows = [torch.zeros(4), torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([1.0, 0.0, 0.0, 0.0])]
    if loss.needs_classes:
        w = loss.class_weights
        rows += [2.0 * w[0], -3.0 * w[1], w[2]]
    else:
        rows += [torch.tensor([0.0, 1.0, 0.0, 0.0]), torch.tensor([0.0, -1.0, 0.0, 0.0]), torch.ones(4)]
    x = torch.stack(rows).requires_grad_(True)
    y = torch.tensor([0, 1, 1, 0, 1, 2])
    value = loss(x, y)
    value.backward()
    assert torch.isfinite(value), name
    assert torch.isfinite(x.grad).all(), name
    assert all(torch.isfinite(p.grad).all() for p in loss.parameters() if p.grad is not None), name


@pytest.mark.parametrize("name", ALL)
def test_state_dict_round_trip_gives_the_same_loss(name):
    x, y = gaussian_identities(3)
    x = x[:, :EMB_DIM]
    first = create_loss(name, embedding_dim=EMB_DIM, num_classes=CLASSES)
    first.eval()
    first(x, y)  # ring: R initialised from this batch
    second = create_loss(name, embedding_dim=EMB_DIM, num_classes=CLASSES)
    second.load_state_dict(first.state_dict())
    second.eval()
    assert second(x, y).item() == pytest.approx(first(x, y).item(), rel=1e-6)
