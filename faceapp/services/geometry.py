"""The geometry view of the losses: what each loss does to a 2-D or 3-D feature space.

A toy version of the SphereFace paper's Figures 2 and 3: a handful of identities (aligned crops from the
alignment cache, e.g. 6 AT&T people x 10 images), a small network ending in a 2-D or 3-D embedding, trained
for a few hundred full-batch steps with each loss (softmax, modified softmax, SphereFace, CosFace, ArcFace,
center loss), all from the same initial weights and data. The learned features (and the class weight
directions of the loss's classifier) are then plotted on the unit circle or sphere: softmax separates
classes by angle but leaves wide angular spreads and a radial fan; the normalised losses tighten each
class's angular spread, the margin losses (SphereFace, CosFace, ArcFace) most, leaving empty margins
between classes; center loss pulls features towards their class centres.

The network is an MLP on 24x24 grey pixels of the aligned crops (standardised): small enough to train every
loss in about a second on a CPU, and the point is the loss's effect on the feature geometry, not accuracy.
Margins and scales are defaults adapted to a 2-D/3-D space with few classes (``LOW_DIM_PARAMS``), where
the large-dimension defaults (ArcFace m=0.5 with s=64) cannot all be satisfied at once.

    result = run_to_completion(train_geometry(GeometryConfig(data="../shared/datasets/att_faces")))
    result.runs["arcface"].features        # (N, 2) raw features; .weights (C, 2); .intra_deg, .inter_deg

torch is imported when training starts, so the GUI can list the losses without loading it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from faceapp.core.errors import DatasetError
from faceapp.core.progress import CancelToken, Job, Progress

GEOMETRY_LOSSES = ("softmax", "modified_softmax", "sphereface", "cosface", "arcface", "center")
LOSS_TITLES = {"softmax": "Softmax", "modified_softmax": "Modified softmax", "sphereface": "SphereFace (A-softmax)",
               "cosface": "CosFace", "arcface": "ArcFace", "center": "Center loss"}
# Hyper-parameters for a 2-D/3-D embedding of a few classes (the zoo's defaults are for 128-D and
# thousands of identities); anything given in GeometryConfig.loss_params overrides them.
LOW_DIM_PARAMS: dict[str, dict[str, Any]] = {
    "sphereface": {"m": 4, "lambda_base": 1000.0, "lambda_gamma": 0.5, "lambda_min": 1.0},
    "cosface": {"s": 16.0, "m": 0.25},
    "arcface": {"s": 16.0, "m": 0.3},
    "center": {"weight": 0.5, "alpha": 0.5},
}
INPUT_SIDE = 24


@dataclass
class GeometryConfig:
    """One geometry experiment: data, embedding size, losses and the training budget."""

    data: str = ""                            # labelled folder <identity>/<images>; "" = AT&T from the datasets
    identities: int = 6                       # how many identities (the first ones with enough aligned images)
    per_identity: int = 10                    # images per identity
    dim: int = 2                              # 2 (circle) or 3 (sphere)
    losses: tuple[str, ...] = GEOMETRY_LOSSES
    steps: int = 300                          # full-batch Adam steps per loss
    lr: float = 0.01
    noise: float = 1.0                        # std of Gaussian noise added to the (standardised) inputs each step
    hidden: int = 64
    seed: int = 0
    loss_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self) -> "GeometryConfig":
        """DatasetError naming the setting that is out of range; returns self."""
        from faceapp.nn.losses import list_losses

        if self.dim not in (2, 3):
            raise DatasetError(f"geometry dim must be 2 or 3, got {self.dim}")
        if not 2 <= self.identities <= 20:
            raise DatasetError(f"geometry identities must be in [2, 20], got {self.identities}")
        if self.per_identity < 2:
            raise DatasetError(f"geometry per_identity must be at least 2, got {self.per_identity}")
        if self.noise < 0:
            raise DatasetError(f"geometry noise must be >= 0, got {self.noise}")
        if self.steps < 1:
            raise DatasetError(f"geometry steps must be at least 1, got {self.steps}")
        unknown = [name for name in self.losses if name not in list_losses()]
        if unknown or not self.losses:
            raise DatasetError(f"geometry losses {unknown or '(none)'}: choose among {', '.join(GEOMETRY_LOSSES)}")
        return self


@dataclass
class GeometryData:
    """The toy training set: standardised pixel inputs, labels, the identities' names, a few crops."""

    inputs: np.ndarray            # (N, F) float32
    labels: np.ndarray            # (N,) int64
    identities: list[str]
    source: str


@dataclass
class GeometryRun:
    """One loss's learned geometry."""

    loss: str
    features: np.ndarray          # (N, dim) raw embeddings
    labels: np.ndarray            # (N,)
    weights: np.ndarray | None    # (C, dim) class weight directions of the loss's classifier
    accuracy: float               # training accuracy of the classifier (no margin)
    intra_deg: float              # mean angle between a feature and its class's mean direction
    inter_deg: float              # smallest angle between two class mean directions
    final_loss: float
    params: dict[str, Any]
    seconds: float

    @property
    def separation(self) -> float:
        """inter / (2 * intra): above 1, the classes' typical angular spreads do not overlap."""
        return self.inter_deg / max(1e-9, 2.0 * self.intra_deg)


@dataclass
class GeometryResult:
    """Every loss's run on the same data."""

    dim: int
    identities: list[str]
    source: str
    runs: dict[str, GeometryRun] = field(default_factory=dict)


def default_geometry_folder() -> Path:
    """AT&T faces in the datasets folder (``FACEAPP_DATASETS``)."""
    from faceapp.core.paths import datasets_dir

    return datasets_dir() / "att_faces"


def pixel_features(crops: np.ndarray, side: int = INPUT_SIDE) -> np.ndarray:
    """Aligned BGR crops -> (N, side*side) grey pixels, standardised per pixel over the set."""
    grey = [cv2.resize(cv2.cvtColor(np.ascontiguousarray(c), cv2.COLOR_BGR2GRAY), (side, side),
                       interpolation=cv2.INTER_AREA) for c in crops]
    x = np.stack(grey).reshape(len(grey), -1).astype(np.float32) / 255.0
    return (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-3)


def load_geometry_data(config: GeometryConfig, *, cache_root: Path | None = None,
                       embed: Callable[[np.ndarray], np.ndarray] | None = None,
                       cancel: CancelToken | None = None) -> Job[GeometryData]:
    """The first ``config.identities`` identities of the folder with ``per_identity`` aligned images
    (through the alignment cache); inputs are pixels, or ``embed(crops)`` when given."""
    from faceapp.data.cache import align_images
    from faceapp.data.datasets import DatasetSpec, scan_dataset

    folder = Path(config.data) if config.data else default_geometry_folder()
    listing = scan_dataset(DatasetSpec(path=str(folder)))
    counts = listing.counts()
    spare = max(2, config.identities // 2)            # a few extra in case some images have no face
    chosen = [name for name in sorted(counts) if counts[name] >= config.per_identity][: config.identities + spare]
    items = [item for item in listing.items if item.identity in set(chosen)]
    if not items:
        raise DatasetError(f"{folder}: no identity has {config.per_identity} images")
    aligned = yield from align_images(items, name=f"{listing.name}-geometry", cache_root=cache_root, cancel=cancel)
    rows_by_id: dict[str, list[int]] = {}
    for row in np.flatnonzero(aligned.ok):
        rows_by_id.setdefault(aligned.identities[row], []).append(int(row))
    names = [n for n in chosen if len(rows_by_id.get(n, [])) >= config.per_identity][: config.identities]
    if len(names) < config.identities:
        raise DatasetError(f"{folder}: only {len(names)} identities have {config.per_identity} images with a face; "
                           f"{config.identities} were asked for")
    rows = [r for n in names for r in rows_by_id[n][: config.per_identity]]
    labels = np.repeat(np.arange(len(names)), config.per_identity).astype(np.int64)
    crops = np.asarray(aligned.crops[np.asarray(rows)])
    inputs = pixel_features(crops) if embed is None else np.asarray(embed(crops), dtype=np.float32)
    what = "pixels" if embed is None else "embeddings"
    return GeometryData(inputs=inputs, labels=labels, identities=[n.split("/")[-1] for n in names],
                        source=f"{listing.name}: {len(names)} identities x {config.per_identity} images ({what})")


def _network(n_in: int, hidden: int, dim: int) -> Any:
    from torch import nn

    return nn.Sequential(nn.Linear(n_in, hidden), nn.PReLU(hidden), nn.Linear(hidden, hidden), nn.PReLU(hidden),
                         nn.Linear(hidden, dim))


def angular_stats(features: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(mean angle of features to their class mean direction, smallest angle between class means), degrees."""
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    classes = np.unique(labels)
    means = np.stack([x[labels == c].mean(axis=0) for c in classes])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    own = means[np.searchsorted(classes, labels)]
    intra = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", x, own), -1.0, 1.0))).mean()
    cos = np.clip(means @ means.T, -1.0, 1.0)
    np.fill_diagonal(cos, -1.0)
    inter = np.degrees(np.arccos(cos.max())) if classes.size > 1 else 180.0
    return float(intra), float(inter)


def train_one(data: GeometryData, loss_name: str, config: GeometryConfig,
              cancel: CancelToken | None = None) -> Job[GeometryRun]:
    """Train the toy network with one loss; yields progress every 25 steps."""
    import torch

    from faceapp.nn.losses import create_loss

    params = {**LOW_DIM_PARAMS.get(loss_name, {}), **config.loss_params.get(loss_name, {})}
    start = time.monotonic()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)            # same initial network for every loss
        net = _network(data.inputs.shape[1], config.hidden, config.dim)
        loss = create_loss(loss_name, embedding_dim=config.dim, num_classes=len(data.identities), **params)
    x = torch.from_numpy(data.inputs)
    y = torch.from_numpy(data.labels)
    noise = torch.Generator().manual_seed(config.seed + 1)
    optimizer = torch.optim.Adam(list(net.parameters()) + list(loss.parameters()), lr=config.lr)
    value = torch.zeros(())
    net.train()
    loss.train()
    for step in range(config.steps):
        if cancel is not None:
            cancel.raise_if_cancelled("geometry training")
        loss.on_step(step)
        batch = x + config.noise * torch.randn(x.shape, generator=noise) if config.noise > 0 else x
        value = loss(net(batch), y)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        if (step + 1) % 25 == 0 or step + 1 == config.steps:
            yield Progress("geometry", step + 1, config.steps, message=LOSS_TITLES.get(loss_name, loss_name),
                           metrics={"loss": float(value.item())})
    net.eval()
    loss.eval()
    with torch.no_grad():
        features = net(x)
        logits = getattr(loss, "logits", None)
        accuracy = float((logits(features).argmax(1) == y).float().mean()) if callable(logits) else float("nan")
        weights = getattr(loss, "class_weights", None)
    feats = features.numpy().astype(np.float32)
    intra, inter = angular_stats(feats, data.labels)
    return GeometryRun(loss=loss_name, features=feats, labels=data.labels.copy(),
                       weights=None if weights is None else weights.numpy().astype(np.float32),
                       accuracy=accuracy, intra_deg=intra, inter_deg=inter, final_loss=float(value.item()),
                       params=dict(loss.hparams), seconds=time.monotonic() - start)


def train_geometry(config: GeometryConfig, cancel: CancelToken | None = None, *, data: GeometryData | None = None,
                   cache_root: Path | None = None) -> Job[GeometryResult]:
    """Train the toy network with every loss of ``config.losses`` on the same data; see the module docstring.

    Runs torch on one CPU thread (restored after): the network is tiny, and OpenMP threads spinning on a
    busy machine make such small steps many times slower.
    """
    import torch

    config.check()
    if data is None:
        data = yield from load_geometry_data(config, cache_root=cache_root, cancel=cancel)
    result = GeometryResult(dim=config.dim, identities=list(data.identities), source=data.source)
    total = config.steps * len(config.losses)
    threads = torch.get_num_threads()
    try:
        for k, name in enumerate(config.losses):
            torch.set_num_threads(1)
            job = train_one(data, name, config, cancel)
            while True:
                try:
                    event = next(job)
                except StopIteration as stop:
                    result.runs[name] = stop.value
                    break
                yield Progress("geometry", k * config.steps + event.done, total, message=event.message,
                               metrics=event.metrics)
    finally:
        torch.set_num_threads(threads)
    return result
