"""GalleryIndex: contiguous unit rows, exact cosine, per-identity top-k, add/remove bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.core.errors import IncompatibleError
from faceapp.matching import GalleryIndex


def _random_gallery(identities: int, per_identity: int, dim: int = 32, seed: int = 0) -> tuple[GalleryIndex, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((identities * per_identity, dim)).astype(np.float32)
    index = GalleryIndex("m@1", dim)
    index.add(np.arange(len(vectors)) + 100, np.repeat(np.arange(identities), per_identity), vectors)
    return index, vectors


def test_rows_are_unit_contiguous_float32_and_scores_are_exact_cosines() -> None:
    index, vectors = _random_gallery(5, 3)
    assert index.matrix.dtype == np.float32 and index.matrix.flags["C_CONTIGUOUS"]
    assert np.allclose(np.linalg.norm(index.matrix, axis=1), 1.0, atol=1e-6)
    probe = np.random.default_rng(9).standard_normal(32).astype(np.float32) * 7.0
    expected = vectors @ probe / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(probe))
    assert np.allclose(index.scores(probe), expected, atol=1e-5)
    assert len(index) == 15 and index.identity_count == 5 and index.templates_of(2) == 3


def test_top_identities_rank_by_best_template_and_match_brute_force() -> None:
    rng = np.random.default_rng(1)
    dim = 16
    index = GalleryIndex("m@1", dim)
    identity_ids = rng.integers(0, 40, 300)                 # uneven template counts per identity
    vectors = rng.standard_normal((300, dim)).astype(np.float32)
    index.add(np.arange(300), identity_ids, vectors)
    for trial in range(20):
        probe = rng.standard_normal(dim).astype(np.float32)
        scores = index.scores(probe)
        brute = {}
        for identity, score in zip(identity_ids.tolist(), scores.tolist()):
            brute[identity] = max(brute.get(identity, -2.0), score)
        expected = sorted(brute.items(), key=lambda kv: -kv[1])[:5]
        got = index.top_identities(probe, 5)
        assert [i for i, _ in got] == [i for i, _ in expected]
        assert np.allclose([s for _, s in got], [s for _, s in expected])


def test_the_top_identity_of_an_enrolled_vector_is_its_owner() -> None:
    index, vectors = _random_gallery(50, 4, dim=64)
    for row in (0, 57, 199):
        top = index.top_identities(vectors[row], 3)
        assert top[0][0] == row // 4 and top[0][1] == pytest.approx(1.0, abs=1e-5)
        assert len({identity for identity, _ in top}) == 3


def test_remove_templates_and_identities_keep_rows_consistent() -> None:
    index, vectors = _random_gallery(4, 3, dim=8)
    assert index.remove_templates([100, 101, 999]) == 2
    assert index.templates_of(0) == 1 and len(index) == 10
    assert index.remove_identity(2) == 3 and 2 not in index.identities()
    assert index.remove_identity(2) == 0
    assert set(index.identity_ids.tolist()) == {0, 1, 3}
    for row, template_id in enumerate(index.template_ids.tolist()):   # rows still match their template ids
        original = vectors[template_id - 100]
        assert np.allclose(index.matrix[row], original / np.linalg.norm(original), atol=1e-6)
    assert index.matrix.flags["C_CONTIGUOUS"]


def test_growth_keeps_earlier_rows() -> None:
    index = GalleryIndex("m@1", 4)
    rng = np.random.default_rng(3)
    chunks = [rng.standard_normal((n, 4)).astype(np.float32) for n in (1, 70, 200)]
    start = 0
    for chunk in chunks:
        index.add(np.arange(start, start + len(chunk)), np.arange(start, start + len(chunk)), chunk)
        start += len(chunk)
    stacked = np.concatenate(chunks)
    assert np.allclose(index.matrix, stacked / np.linalg.norm(stacked, axis=1, keepdims=True), atol=1e-6)


def test_wrong_dimension_is_refused_for_rows_and_probes() -> None:
    index, _ = _random_gallery(2, 2, dim=8)
    with pytest.raises(IncompatibleError, match="dimension 8"):
        index.add([1], [1], np.ones((1, 9), np.float32))
    with pytest.raises(IncompatibleError, match="9 values"):
        index.scores(np.ones(9, np.float32))
    with pytest.raises(IncompatibleError, match="zero"):
        index.top_identities(np.zeros(8, np.float32))
    assert len(index) == 4


def test_blas_and_einsum_products_agree() -> None:
    index, _ = _random_gallery(30, 4, dim=64)
    probe = np.random.default_rng(5).standard_normal(64).astype(np.float32)
    blas = GalleryIndex("m@1", 64, use_blas=True)
    blas.add(index.template_ids, index.identity_ids, index.matrix)
    assert np.allclose(index.scores(probe), blas.scores(probe), atol=1e-5)
    assert [i for i, _ in index.top_identities(probe, 5)] == [i for i, _ in blas.top_identities(probe, 5)]


def test_take_rows_shares_the_rows_of_the_same_model_only() -> None:
    source, _ = _random_gallery(4, 3)
    source.names = {0: "a"}
    taker = GalleryIndex("m@1", 32)
    taker.take_rows(source)
    assert len(taker) == 12 and taker.identity_count == 4 and taker.names == {0: "a"}
    assert np.shares_memory(taker.matrix, source.matrix)
    with pytest.raises(IncompatibleError, match="cannot take the rows of m@1"):
        GalleryIndex("other@2", 32).take_rows(source)


def test_most_templates_follows_adds_and_removals() -> None:
    index = GalleryIndex("m@1", 4)
    assert index.most_templates == 0
    rows = np.eye(4, dtype=np.float32)
    index.add([1, 2, 3], [10, 10, 11], rows[:3])
    assert index.most_templates == 2
    index.add([4, 5], [11, 11], rows[2:4])
    assert index.most_templates == 3
    index.remove_templates([3, 4])
    assert index.most_templates == 2
    index.remove_identity(10)
    assert index.most_templates == 1
    index.clear()
    assert index.most_templates == 0
