"""Projections and the identity similarity matrix, checked against hand computations and on real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceapp.core.errors import DatasetError
from faceapp.embedding import Embedder
from faceapp.services.projection import available_methods, identity_similarity, pca, project
from tests.services.analyst_data import att_crops


def test_pca_axes_variance_and_sign() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) * np.array([5.0, 2.0, 0.1])
    coords, ratio = pca(x, 2)
    assert coords.shape == (200, 2)
    assert ratio[0] > ratio[1] > 0 and ratio.sum() == pytest.approx(
        (25 * np.var(x[:, 0] / 5) + 4 * np.var(x[:, 1] / 2)) / np.var(x, axis=0).sum(), rel=0.05)
    assert np.corrcoef(coords[:, 0], x[:, 0])[0, 1] > 0.99          # sign fixed: largest loading positive
    again, _ = pca(-x, 2)
    assert np.allclose(np.abs(again), np.abs(coords), atol=1e-4)
    tiny, r = pca(x[:1], 2)                                       # one point: zeros, no crash
    assert tiny.shape == (1, 2) and not r.any()


def test_identity_similarity_is_the_mean_over_template_pairs() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(7, 4))
    labels = np.array([5, 5, 9, 9, 9, 3, 5])
    ids, matrix = identity_similarity(x, labels)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert ids.tolist() == [3, 5, 9]
    for a, ia in enumerate(ids):
        for b, ib in enumerate(ids):
            rows, cols = np.flatnonzero(labels == ia), np.flatnonzero(labels == ib)
            sims = [unit[i] @ unit[j] for i in rows for j in cols if i != j]
            if sims:
                assert matrix[a, b] == pytest.approx(np.mean(sims))
            else:
                assert np.isnan(matrix[a, b])                      # identity 3 has one template
    assert np.allclose(np.nan_to_num(matrix), np.nan_to_num(matrix.T))


def test_tsne_separates_real_identities_and_methods(att: Path, mediapipe_models: Path, tiny_embedder: Embedder) -> None:
    assert {"pca", "tsne"} <= set(available_methods())
    crops, names = att_crops(att, range(1, 5), per_subject=6)
    embeddings = tiny_embedder.embed(crops)
    labels = np.array(names)
    assert project(embeddings, "pca").shape == (len(names), 2)
    points = project(embeddings, "tsne")
    assert points.shape == (len(names), 2) and np.isfinite(points).all()
    # nearest neighbour in the 2-D map mostly has the same identity (the untrained net still groups a person)
    d = np.linalg.norm(points[:, None] - points[None], axis=2)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(axis=1)] == labels).mean() > 0.6
    with pytest.raises(DatasetError, match="no embeddings"):
        project(np.zeros((0, 8)))
    with pytest.raises(DatasetError, match="choose one of"):
        project(embeddings, "isomap")
    if "umap" not in available_methods():
        with pytest.raises(DatasetError, match="not installed"):
            project(embeddings, "umap")
