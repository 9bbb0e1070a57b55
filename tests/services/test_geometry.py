"""The loss-geometry toy training on real aligned AT&T faces: every loss learns, margins shape the angles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceapp.core.errors import CancelledError, DatasetError
from faceapp.core.progress import CancelToken, run_to_completion
from faceapp.services.geometry import GeometryConfig, angular_stats, load_geometry_data, train_geometry


@pytest.fixture(scope="module")
def data(att: Path, mediapipe_models: Path):  # noqa: ANN201
    return run_to_completion(load_geometry_data(GeometryConfig(data=str(att), identities=5)))


def test_angular_stats_by_hand() -> None:
    features = np.array([[1, 0], [2, 0.2], [0, 3], [-0.3, 1]], dtype=np.float32)
    intra, inter = angular_stats(features, np.array([0, 0, 1, 1]))
    a = np.degrees(np.arctan2(0.2, 2)) / 2           # class 0: directions 0 and 2a, mean at a
    b = np.degrees(np.arctan2(0.3, 1)) / 2           # class 1: 90 and 90 + 2b, mean at 90 + b
    assert intra == pytest.approx((a + a + b + b) / 4, abs=0.01)
    assert inter == pytest.approx(90 + b - a, abs=0.01)


def test_losses_learn_and_margins_spread_the_classes(data, att: Path) -> None:
    assert data.inputs.shape == (50, 24 * 24) and data.identities == ["s1", "s10", "s11", "s12", "s13"]
    config = GeometryConfig(data=str(att), identities=5, steps=150, losses=("softmax", "arcface", "center"))
    events = []
    result = run_to_completion(train_geometry(config, data=data), events.append)
    assert events[-1].done == events[-1].total == 450
    assert set(result.runs) == {"softmax", "arcface", "center"} and result.dim == 2
    for run in result.runs.values():
        assert run.features.shape == (50, 2) and run.accuracy >= 0.9, (run.loss, run.accuracy)
        assert run.weights is not None and run.weights.shape == (5, 2)
    soft, arc, center = result.runs["softmax"], result.runs["arcface"], result.runs["center"]
    assert arc.inter_deg > soft.inter_deg            # the angular margin pushes class directions apart
    assert np.linalg.norm(soft.features, axis=1).mean() > 3 * np.linalg.norm(center.features, axis=1).mean()
    assert arc.params["m"] == 0.3 and arc.params["s"] == 16.0   # low-dimension defaults


def test_sphere_and_bad_settings(data, att: Path) -> None:
    config = GeometryConfig(data=str(att), identities=5, dim=3, steps=30, losses=("cosface",))
    run = run_to_completion(train_geometry(config, data=data)).runs["cosface"]
    assert run.features.shape == (50, 3) and run.weights.shape == (5, 3)
    with pytest.raises(DatasetError, match="dim must be 2 or 3"):
        run_to_completion(train_geometry(GeometryConfig(dim=4), data=data))
    with pytest.raises(DatasetError, match="choose among"):
        run_to_completion(train_geometry(GeometryConfig(losses=("nope",)), data=data))
    with pytest.raises(DatasetError, match="no identity has 11 images"):
        run_to_completion(load_geometry_data(GeometryConfig(data=str(att), identities=5, per_identity=11)))
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(CancelledError):
        run_to_completion(train_geometry(config, cancel, data=data))
