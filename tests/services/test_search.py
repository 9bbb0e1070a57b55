"""The gallery's search engine on a real SQLite file: exact by default, FAISS by option or above the size
threshold, persisted beside the database and reused, rebuilt (never served stale) when the file is foreign,
stale or damaged, exact with a notice when FAISS is missing; answers equal the exact search."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from faceapp.matching.index_file import read_header
from faceapp.services import search
from faceapp.services.gallery import Gallery
from faceapp.storage import ModelSpec, NewIdentity, NewSample, Store
from tests.matching.test_ann import clustered

DIM = 32
MODEL = ModelSpec("m@000000000001", "m", DIM)
OTHER = ModelSpec("o@000000000002", "o", DIM)


@pytest.fixture
def filled(store: Store) -> tuple[Store, np.ndarray]:
    """60 identities x 5 templates of clustered embeddings in a real SQLite file; returns the probes."""
    labels, rows, probes = clustered(60, dim=DIM)
    for identity in range(60):
        samples = [NewSample(embedding=rows[i]) for i in np.flatnonzero(labels == identity)]
        store.templates.enroll(NewIdentity(f"p{identity}"), samples, MODEL)
    return store, probes


def answers(gallery: Gallery, probes: np.ndarray) -> list[list[str]]:
    return [[c.name for c in gallery.identify(p, top_k=3, audit=False).candidates] for p in probes]


def test_auto_is_exact_below_the_threshold_and_faiss_above(filled, monkeypatch: pytest.MonkeyPatch) -> None:
    store, probes = filled
    exact = Gallery(store, MODEL, search="auto")
    assert exact.search.engine == "exact" and exact.status().search == "exact"
    monkeypatch.setattr(search, "AUTO_ANN_MIN_TEMPLATES", 250)
    approx = Gallery(store, MODEL, search="auto")
    assert approx.search.engine == "hnsw" and approx.index.built
    assert [a[0] for a in answers(approx, probes)] == [a[0] for a in answers(exact, probes)]


def test_index_file_is_written_beside_the_database_and_reused(filled) -> None:
    store, probes = filled
    first = Gallery(store, MODEL, search="faiss")
    path = first.search.index_file
    assert path == store.path.with_name("gallery.db.index") / "m_000000000001.faiss" and path.is_file()
    assert not first.search.loaded_from_file and read_header(path)["templates"] == 300
    second = Gallery(store, MODEL, search="faiss")
    assert second.search.loaded_from_file and second.search.notice is None
    assert answers(second, probes) == answers(first, probes)


def test_enrolments_after_the_build_are_searched_and_deletions_never_answer(filled) -> None:
    store, probes = filled
    gallery = Gallery(store, MODEL, search="hnsw")
    newcomer = np.random.default_rng(9).standard_normal(DIM).astype(np.float32)
    store.templates.enroll(NewIdentity("late"), [NewSample(embedding=newcomer)], MODEL)
    assert gallery.identify(newcomer, audit=False).best.name == "late"
    store.identities.delete("p4")
    assert "p4" not in answers(gallery, probes[4:5])[0]
    reopened = Gallery(store, MODEL, search="hnsw")           # the file held p4: stale, rebuilt
    assert "stale" in reopened.search.notice and "rebuilt" in reopened.search.notice
    assert reopened.index.snapshot_ids.size == 296


@pytest.mark.parametrize("damage", ["foreign", "corrupt"])
def test_a_foreign_or_damaged_file_is_named_and_rebuilt(filled, damage: str) -> None:
    store, probes = filled
    reference = answers(Gallery(store, MODEL, search="exact"), probes)
    path = Gallery(store, MODEL, search="faiss").search.index_file
    if damage == "foreign":
        labels, rows, _ = clustered(20, dim=DIM, seed=4)
        store.templates.enroll(NewIdentity("x"), [NewSample(embedding=rows[0])], OTHER)
        other_file = Gallery(store, OTHER, search="faiss").search.index_file
        shutil.copyfile(other_file, path)                     # the other model's index under this model's name
    else:
        data = bytearray(path.read_bytes())
        data[-500:] = bytes(500)
        path.write_bytes(bytes(data))
    gallery = Gallery(store, MODEL, search="faiss")
    expected = "built for model o@000000000002" if damage == "foreign" else "damaged"
    assert str(path) in gallery.search.notice and expected in gallery.search.notice
    assert gallery.index.built and [a[0] for a in answers(gallery, probes)] == [a[0] for a in reference]
    assert read_header(path)["model_id"] == MODEL.model_id       # replaced by a good one
    assert store.templates.revision() > 0 and len(gallery.index) == 300   # nothing lost


def test_faiss_missing_falls_back_to_exact_with_a_notice(filled, monkeypatch: pytest.MonkeyPatch) -> None:
    store, probes = filled
    monkeypatch.setitem(sys.modules, "faiss", None)
    gallery = Gallery(store, MODEL, search="faiss")
    assert gallery.search.engine == "exact" and "pip install 'faceapp[ann]'" in gallery.status().search_notice
    assert gallery.identify(probes[0], audit=False).best.name == "p0"


def test_mode_from_the_environment_and_unknown_modes(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEAPP_INDEX", "hnsw")
    assert search.resolve_mode(None) == "hnsw" and search.resolve_mode("exact") == "exact"
    monkeypatch.setenv("FACEAPP_INDEX", "annoy")
    with pytest.raises(ValueError, match=r"\$FACEAPP_INDEX='annoy' is not a search mode"):
        Gallery(store, MODEL)


def test_pgvector_on_sqlite_falls_back_with_the_reason(filled) -> None:
    store, probes = filled
    gallery = Gallery(store, MODEL, search="pgvector")
    assert gallery.search.engine == "exact" and "needs a PostgreSQL gallery" in gallery.search.notice
    assert gallery.identify(probes[1], audit=False).best.name == "p1"


def test_an_in_memory_database_keeps_no_file(tmp_path: Path) -> None:
    with Store("sqlite://") as memory:
        labels, rows, _ = clustered(10, dim=DIM)
        memory.templates.enroll(NewIdentity("a"), [NewSample(embedding=rows[0])], MODEL)
        gallery = Gallery(memory, MODEL, search="faiss")
        assert gallery.search.index_file is None and gallery.index.built


def test_the_index_file_of_an_encrypted_gallery_holds_no_template_in_clear(filled, monkeypatch) -> None:
    store, probes = filled
    assert store.encrypted                                 # galleries are encrypted by default
    gallery = Gallery(store, MODEL, search="faiss")
    path = gallery.search.index_file
    header, raw = read_header(path), path.read_bytes()
    assert header["sealed"] is True
    rows = gallery.index.matrix
    assert not any(rows[i, :4].astype("<f4").tobytes() in raw for i in range(0, len(rows), 7))
    assert Gallery(store, MODEL, search="faiss").search.loaded_from_file      # reopened with the key
    monkeypatch.setenv("FACEAPP_GALLERY_ENCRYPTION", "off")
    with Store(store.path.with_name("clear.db")) as clear:
        assert not clear.encrypted
        for i, probe in enumerate(probes[:20]):
            clear.templates.enroll(NewIdentity(f"c{i}"), [NewSample(embedding=probe)], MODEL)
        plain = Gallery(clear, MODEL, search="faiss")
        assert read_header(plain.search.index_file)["sealed"] is False
        shutil.copy(path, plain.search.index_file)           # a sealed file where a clear gallery expects its own
        again = Gallery(clear, MODEL, search="faiss")
        assert not again.search.loaded_from_file and "sealed" in again.search.notice


def test_an_interactive_gallery_answers_at_once_and_swaps_the_index_in_when_built(filled, monkeypatch) -> None:
    import threading

    from faceapp.matching.ann import FaissIndex

    store, probes = filled
    release = threading.Event()
    real = FaissIndex._build_structure

    def slow(self, vectors, ids):
        built = real(self, vectors, ids)
        assert release.wait(30)
        return built

    monkeypatch.setattr(FaissIndex, "_build_structure", slow)
    gallery = Gallery(store, MODEL, search="ivf", index_build="background")
    status = gallery.status()
    assert status.search == "exact" and status.search_building                # answering, exactly, meanwhile
    assert gallery.identify(probes[2], audit=False).best.name == "p2"
    path = gallery.search.index_file
    assert not path.exists()
    release.set()
    assert gallery.index.wait_built(30)
    assert gallery.status().search == "ivf" and not gallery.status().search_building
    assert read_header(path)["kind"] == "ivf" and read_header(path)["templates"] == 300
    assert Gallery(store, MODEL, search="ivf").search.loaded_from_file          # saved for the next session
    with pytest.raises(ValueError, match="index_build='later'"):
        Gallery(store, MODEL, index_build="later")
