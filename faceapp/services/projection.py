"""Looking at an embedding space: 2-D projections (PCA, t-SNE, UMAP) and identity-by-identity similarity.

    points = project(embeddings, "tsne")                 # (N, 2)
    ids, matrix = identity_similarity(embeddings, identity_ids)

PCA is always available (numpy SVD, deterministic up to sign, fixed here by making the largest loading
of each axis positive). t-SNE comes from scikit-learn (perplexity adapted to small galleries); UMAP is
used only when the optional ``umap-learn`` package is installed. t-SNE and UMAP get L2-normalised rows and
the Euclidean metric: |a - b|^2 = 2 - 2 cos(a, b), so neighbours are the cosine neighbours, and
scikit-learn's Euclidean t-SNE is several times faster than its cosine variant.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from faceapp.core.errors import DatasetError

METHOD_LABELS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


def available_methods() -> dict[str, str]:
    """Projection methods usable here (name -> label): PCA and t-SNE always, UMAP when installed."""
    methods = {"pca": METHOD_LABELS["pca"], "tsne": METHOD_LABELS["tsne"]}
    if importlib.util.find_spec("umap") is not None:
        methods["umap"] = METHOD_LABELS["umap"]
    return methods


def pca(embeddings: np.ndarray, dim: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Principal components: (N, dim) coordinates and the explained variance ratio of each axis."""
    x = np.asarray(embeddings, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    k = min(dim, vt.shape[0])
    components = vt[:k]
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    signs[signs == 0] = 1.0
    coords = (x @ components.T) * signs
    total = float((s ** 2).sum())
    ratio = (s[:k] ** 2) / total if total > 0 else np.zeros(k)
    if k < dim:                                   # fewer points/dimensions than axes asked for
        coords = np.pad(coords, ((0, 0), (0, dim - k)))
        ratio = np.pad(ratio, (0, dim - k))
    return coords.astype(np.float32), ratio


def project(embeddings: np.ndarray, method: str = "pca", *, dim: int = 2, seed: int = 0,
            perplexity: float | None = None) -> np.ndarray:
    """(N, dim) coordinates of ``embeddings`` by ``method`` ("pca", "tsne", "umap")."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise DatasetError("no embeddings to project (enrol people or re-embed the gallery for the active model)")
    method = method.lower()
    if method not in METHOD_LABELS:
        raise DatasetError(f"projection {method!r}: choose one of {', '.join(METHOD_LABELS)}")
    if method == "pca" or x.shape[0] < 4:
        return pca(x, dim)[0]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    if method == "tsne":
        from sklearn.manifold import TSNE

        p = perplexity if perplexity is not None else max(2.0, min(30.0, (x.shape[0] - 1) / 3.0))
        tsne = TSNE(n_components=dim, perplexity=p, init="pca", random_state=seed)
        return tsne.fit_transform(x).astype(np.float32)
    if "umap" not in available_methods():
        raise DatasetError("UMAP is not installed (pip install umap-learn); PCA and t-SNE are available")
    import umap  # type: ignore[import-not-found]

    reducer: Any = umap.UMAP(n_components=dim, n_neighbors=max(2, min(15, x.shape[0] - 1)), random_state=seed)
    return np.asarray(reducer.fit_transform(x), dtype=np.float32)


def identity_similarity(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(identities in sorted order, (K, K) mean cosine similarity between their templates).

    Off the diagonal: the mean over all template pairs of the two identities. On the diagonal: the mean
    over pairs of *distinct* templates of the identity (NaN when it has a single template).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    ids, inverse = np.unique(np.asarray(labels), return_inverse=True)
    k = ids.size
    onehot = np.zeros((x.shape[0], k))
    onehot[np.arange(x.shape[0]), inverse] = 1.0
    sums = onehot.T @ x                                   # (K, D): sum of each identity's templates
    counts = onehot.sum(axis=0)
    total = sums @ sums.T                                 # sum of all pairwise cosines between identities
    matrix = total / np.outer(counts, counts)
    self_sim = np.einsum("ij,ij->i", x, x)                # 1 per non-zero row
    within = total.diagonal() - onehot.T @ self_sim
    pairs = counts * (counts - 1)
    diag = np.divide(within, pairs, out=np.full(k, np.nan), where=pairs > 0)
    matrix[np.arange(k), np.arange(k)] = diag
    return ids, matrix
