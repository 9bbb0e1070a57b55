"""Server-side identification with pgvector on a real PostgreSQL 16 (pgserver ships pgvector 0.6): templates
stored as ``vector`` with an HNSW cosine index, the identify query answered in the database with the exact
search's answers, deletions cascading, enrolments from another desk pushed on sync; and a server where this
user cannot enable the extension: detected, named, exact fallback. Server-side search needs the templates in clear
on the server, so it serves unencrypted galleries only (``FACEAPP_GALLERY_ENCRYPTION=off`` here); an encrypted
gallery refuses it and removes clear vectors left by an earlier use."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from faceapp.services.gallery import Gallery
from faceapp.storage import ModelSpec, NewIdentity, NewSample, Store
from faceapp.storage.vectors import TABLE, VectorSearch, pgvector_capability
from tests.matching.test_ann import clustered

DIM = 32
MODEL = ModelSpec("m@000000000001", "m", DIM)


@pytest.fixture(autouse=True)
def _clear_galleries(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Galleries of these tests are kept in clear (the one about encryption opts back in)."""
    if "encrypted" not in request.node.name:
        monkeypatch.setenv("FACEAPP_GALLERY_ENCRYPTION", "off")


def enrol_clusters(store: Store, identities: int) -> np.ndarray:
    labels, rows, probes = clustered(identities, dim=DIM)
    for identity in range(identities):
        store.templates.enroll(NewIdentity(f"p{identity}"),
                               [NewSample(embedding=rows[i]) for i in np.flatnonzero(labels == identity)], MODEL)
    return probes


@pytest.mark.slow
def test_identify_runs_in_the_database_with_the_exact_answers(url: str) -> None:
    with Store(url) as store:
        probes = enrol_clusters(store, 80)
        assert pgvector_capability(store) is None
        gallery = Gallery(store, MODEL, search="pgvector")
        exact = Gallery(store, MODEL, search="exact")
        assert gallery.search.engine == "pgvector" and gallery.status().search == "pgvector"
        with store.engine.connect() as connection:
            assert connection.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar() == 400
            assert connection.execute(text(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                f"WHERE attrelid = '{TABLE}'::regclass AND attname = 'embedding'")).scalar() == "vector"
        searcher = gallery.index.searcher
        assert searcher.index_name in searcher.explain(probes[0])            # the HNSW index answers
        top1 = top5 = 0
        for probe in probes:
            server = [c.identity_id for c in gallery.identify(probe, top_k=5, audit=False).candidates]
            local = [c.identity_id for c in exact.identify(probe, top_k=5, audit=False).candidates]
            top1 += server[0] == local[0]
            top5 += len(set(server) & set(local))
        assert top1 / len(probes) >= 0.99 and top5 / (5 * len(probes)) >= 0.9
        best = gallery.identify(probes[7], audit=False).best
        assert best.name == "p7" and best.score == pytest.approx(exact.identify(probes[7], audit=False).best.score,
                                                                 abs=1e-5)


def test_deletions_cascade_and_other_desks_enrolments_are_pushed(url: str) -> None:
    with Store(url) as desk_a, Store(url) as desk_b:
        probes = enrol_clusters(desk_a, 30)
        gallery = Gallery(desk_a, MODEL, search="auto")                      # auto picks pgvector here
        assert gallery.search.engine == "pgvector"
        desk_b.identities.delete("p3")
        assert VectorSearch(desk_a, MODEL.model_id, DIM).stored_ids().size == 145
        assert "p3" not in [c.name for c in gallery.identify(probes[3], audit=False).candidates]
        newcomer = np.random.default_rng(5).standard_normal(DIM).astype(np.float32)
        desk_b.templates.enroll(NewIdentity("late"), [NewSample(embedding=newcomer)], MODEL)
        assert gallery.identify(newcomer, audit=False).best.name == "late"     # synced, pushed, found in SQL


@pytest.fixture
def plain_url(server, url: str) -> str:
    """The test database, owned by a login role that is not a superuser (cannot CREATE EXTENSION vector)."""
    name = url.split("/")[-1].split("?")[0]
    server.psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'desk') THEN "
                "CREATE ROLE desk LOGIN NOSUPERUSER; END IF; END $$;")
    server.psql(f'ALTER DATABASE "{name}" OWNER TO desk;')
    with Store(url, schema="ignore") as admin, admin.engine.begin() as connection:
        connection.execute(text("GRANT ALL ON SCHEMA public TO desk"))
    return url.replace("postgresql://postgres:@", "postgresql://desk:@")


def test_without_rights_to_enable_pgvector_the_search_falls_back_exactly(plain_url: str) -> None:
    with Store(plain_url) as store:
        probes = enrol_clusters(store, 20)
        reason = pgvector_capability(store)
        assert reason is not None and "cannot enable it" in reason and "CREATE EXTENSION vector" in reason
        asked = Gallery(store, MODEL, search="pgvector")
        assert asked.search.engine == "exact" and "server-side search unavailable" in asked.search.notice
        assert asked.identify(probes[2], audit=False).best.name == "p2"
        assert Gallery(store, MODEL, search="auto").search.notice is None     # auto: quietly exact
        assert store.identities.count() == 20                                # nothing lost


def test_an_encrypted_gallery_refuses_server_side_search_and_removes_clear_vectors(url: str) -> None:
    with Store(url) as store:
        assert store.encrypted
        probes = enrol_clusters(store, 10)
        assert pgvector_capability(store) is None                 # the server could search...
        leftover = VectorSearch(store, MODEL.model_id, DIM)      # ...as an earlier, unencrypted desk did
        leftover.ensure()
        exact = Gallery(store, MODEL, search="exact")
        leftover.push(exact.index.template_ids, exact.index.matrix)
        assert leftover.stored_ids().size == 50
        asked = Gallery(store, MODEL, search="pgvector")
        assert asked.search.engine == "exact" and "encrypted at rest" in asked.search.notice
        assert leftover.stored_ids().size == 0                             # no template left in clear
        assert Gallery(store, MODEL, search="auto").search.engine == "exact"
        assert asked.identify(probes[4], audit=False).best.name == "p4"
