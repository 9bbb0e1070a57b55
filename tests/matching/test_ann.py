"""FaissIndex: HNSW and IVF over a snapshot, exact re-ranking, rows added/deleted since, FAISS missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from faceapp.matching import GalleryIndex
from faceapp.matching.ann import AnnUnavailableError, FaissIndex, kind_for, load_faiss


def clustered(identities: int, per_identity: int = 5, dim: int = 32, spread: float = 0.35, seed: int = 0):
    """Unit rows around random identity centres (``spread``: within-identity noise per value over 1/sqrt(dim))."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((identities, dim)).astype(np.float32)
    labels = np.repeat(np.arange(identities), per_identity)
    rows = centres[labels] + spread * rng.standard_normal((labels.size, dim)).astype(np.float32)
    probes = centres + spread * rng.standard_normal(centres.shape).astype(np.float32)
    return labels, rows, probes


def filled(kind: str | None, identities: int = 400, **kw) -> tuple[FaissIndex, np.ndarray]:
    labels, rows, probes = clustered(identities, **kw)
    index = FaissIndex("m@1", rows.shape[1], kind=kind)
    index.add(np.arange(labels.size) + 1000, labels, rows)
    index.build()
    return index, probes


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_recall_against_exact_and_scores_are_exact_cosines(kind: str) -> None:
    index, probes = filled(kind)
    assert index.kind == kind and index.built and not index.stale
    hits1 = hits5 = 0
    for probe in probes:
        approx = index.top_identities(probe, 5)
        exact = GalleryIndex.top_identities(index, probe, 5)
        hits1 += approx[0][0] == exact[0][0]
        hits5 += len({i for i, _ in approx} & {i for i, _ in exact})
        for identity_id, score in approx:       # re-scored exactly: the true cosine of one of its templates
            cosines = index.rows_of(identity_id) @ (probe / np.linalg.norm(probe))
            assert np.min(np.abs(cosines - score)) < 1e-5 and score <= cosines.max() + 1e-6
    assert hits1 / len(probes) >= 0.99 and hits5 / (5 * len(probes)) >= 0.9


def test_rows_added_since_the_build_are_found_and_deleted_ones_never_answer() -> None:
    index, probes = filled("hnsw", identities=100)
    newcomer = np.random.default_rng(7).standard_normal(32).astype(np.float32)
    index.add([99_999], [5000], newcomer[None])
    assert index.changes_since_build() == (1, 0)
    assert index.top_identities(newcomer, 1)[0] == (5000, pytest.approx(1.0, abs=1e-5))
    best = index.top_identities(probes[3], 1)[0][0]
    index.remove_identity(best)
    assert index.changes_since_build() == (1, 5)
    assert best not in [i for i, _ in index.top_identities(probes[3], 5)]
    assert not index.stale                                 # 6 changes on 500 rows: under the budget


def test_a_template_id_reused_after_a_deletion_is_a_new_row() -> None:
    """SQLite may hand a deleted template's id to the next template: the snapshot's vector for that id is old."""
    index, _ = filled("hnsw", identities=100)
    index.remove_templates([1003])
    fresh = np.random.default_rng(11).standard_normal(32).astype(np.float32)
    index.add([1003], [777], fresh[None])
    assert index.changes_since_build() == (1, 1)
    assert index.top_identities(fresh, 1)[0] == (777, pytest.approx(1.0, abs=1e-5))


def test_stale_after_the_change_budget_and_rebuild_clears_it() -> None:
    index, _ = filled("ivf", identities=400)               # 2000 rows
    labels, rows, _ = clustered(300, seed=3)
    index.add(np.arange(labels.size) + 10**6, labels + 10_000, rows)   # 1500 new > max(1000, 10 %)
    assert index.stale
    index.build()
    assert not index.stale and index.snapshot_ids.size == len(index) == 3500


def test_structure_is_chosen_by_size_and_an_unknown_kind_is_refused() -> None:
    assert kind_for(100_000) == "hnsw" and kind_for(5_000_000) == "ivf"
    with pytest.raises(ValueError, match="unknown FAISS index kind 'lsh'"):
        FaissIndex("m@1", 8, kind="lsh")


def test_without_a_snapshot_the_search_is_exact() -> None:
    labels, rows, probes = clustered(50)
    index = FaissIndex("m@1", 32)
    index.add(np.arange(labels.size), labels, rows)
    assert not index.built and index.top_identities(probes[0], 3) == GalleryIndex.top_identities(index, probes[0], 3)


def test_faiss_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)        # what a Python without faiss-cpu does on import
    with pytest.raises(AnnUnavailableError, match=r"pip install 'faceapp\[ann\]'"):
        load_faiss()
    with pytest.raises(AnnUnavailableError):
        FaissIndex("m@1", 8)


class GatedBuild:
    """Holds a background build's finished FAISS structure until released, so a test can act while it runs."""

    def __init__(self, index: FaissIndex, monkeypatch: pytest.MonkeyPatch) -> None:
        import threading

        self.started, self.release = threading.Event(), threading.Event()
        real = index._build_structure

        def gated(vectors, ids):
            built = real(vectors, ids)
            self.started.set()
            assert self.release.wait(30)
            return built

        monkeypatch.setattr(index, "_build_structure", gated)


def test_a_background_build_answers_exactly_meanwhile_and_tombstones_rows_deleted_during_it(monkeypatch) -> None:
    labels, rows, probes = clustered(300)
    index = FaissIndex("m@1", 32, kind="ivf")
    index.add(np.arange(labels.size) + 1000, labels, rows)
    gate = GatedBuild(index, monkeypatch)
    saved: list[str | None] = []
    index.build_in_background(lambda built: saved.append(built.kind))
    assert gate.started.wait(30) and index.building and not index.built
    assert index.top_identities(probes[7], 3) == GalleryIndex.top_identities(index, probes[7], 3)  # exact meanwhile
    index.remove_identity(7)                                   # deleted while the copy is being indexed
    newcomer = np.random.default_rng(3).standard_normal(32).astype(np.float32)
    index.add([50_000], [900], newcomer[None])                 # enrolled while building
    gate.release.set()
    assert index.wait_built(30) and index.built and index.kind == "ivf" and saved == ["ivf"]
    assert 7 not in [i for i, _ in index.top_identities(probes[7], 5)]
    assert index.top_identities(newcomer, 1)[0][0] == 900
    assert index.changes_since_build() == (1, 5)               # the newcomer pending, identity 7's rows dropped
    for probe in probes[20:60]:
        assert index.top_identities(probe, 1)[0][0] == GalleryIndex.top_identities(index, probe, 1)[0][0]


def test_a_rebuild_in_the_background_keeps_the_old_snapshot_serving(monkeypatch) -> None:
    index, probes = filled("hnsw", identities=200)
    old_snapshot = index.snapshot_ids.copy()
    extra_labels, extra_rows, extra_probes = clustered(250, seed=5)
    index.add(np.arange(extra_labels.size) + 90_000, extra_labels + 10_000, extra_rows)
    assert index.stale
    gate = GatedBuild(index, monkeypatch)
    thread = index.build_in_background()
    assert gate.started.wait(30) and index.build_in_background() is thread     # one build at a time
    assert np.array_equal(index.snapshot_ids, old_snapshot)                    # still the old one
    assert index.top_identities(extra_probes[3], 1)[0][0] == 10_003            # pending rows searched exactly
    gate.release.set()
    assert index.wait_built(30) and not index.stale and index.snapshot_ids.size == 1000 + 1250


def test_a_failed_background_build_is_reported_and_the_exact_search_goes_on(monkeypatch) -> None:
    labels, rows, probes = clustered(50)
    index = FaissIndex("m@1", 32, kind="ivf")
    index.add(np.arange(labels.size), labels, rows)

    def out_of_memory(vectors, ids):
        raise MemoryError("cannot allocate 2 GB")

    monkeypatch.setattr(index, "_build_structure", out_of_memory)
    index.build_in_background()
    assert index.wait_built(30) and not index.built
    assert "building the FAISS index failed" in index.build_error and "2 GB" in index.build_error
    assert index.top_identities(probes[4], 1)[0][0] == 4
