"""The gallery service: index kept in sync with the store (also across store handles), audited
decisions, thresholds from the store, and templates of another size never compared."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from faceapp.core.errors import IncompatibleError, NotFoundError
from faceapp.matching import Thresholds
from faceapp.services.gallery import Gallery, model_spec
from faceapp.storage import ModelSpec, NewIdentity, NewSample, Store

DIM = 8
MODEL = ModelSpec("m@000000000001", "m", DIM)


def _unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _enrol(store: Store, name: str, seeds: list[int]) -> int:
    samples = [NewSample(crop=np.zeros((112, 112, 3), np.uint8), embedding=_unit(s)) for s in seeds]
    return store.templates.enroll(NewIdentity(name), samples, MODEL).identity.id


def test_index_follows_changes_made_through_another_store_handle(store: Store) -> None:
    alice = _enrol(store, "Alice", [1, 2])
    gallery = Gallery(store, MODEL, operator="desk")
    assert len(gallery.index) == 2 and gallery.index.names[alice] == "Alice"
    other = Store(store.path)                     # e.g. the CLI enrolling while the GUI runs
    bob = _enrol(other, "Bob", [3])
    other.identities.rename("Alice", "Alicia")
    assert gallery.identify(_unit(3)).best.name == "Bob"                  # synced before answering
    assert gallery.index.names[alice] == "Alicia"
    other.identities.delete("Bob")
    decision = gallery.identify(_unit(3))
    assert bob not in gallery.index.identities() and decision.best.name == "Alicia"
    template_ids = set(gallery.index.template_ids.tolist())
    assert template_ids == {t.id for t in store.templates.for_identity(alice)}
    assert gallery.sync() is False                                        # nothing moved since
    other.close()


def test_decisions_are_audited_with_thresholds_from_the_store(store: Store) -> None:
    alice = _enrol(store, "Alice", [1, 2])
    gallery = Gallery(store, MODEL, operator="desk")
    assert gallery.thresholds().source == "default"
    gallery.save_thresholds(0.9, 0.95, target_far=1e-3, source="calibration")
    assert gallery.thresholds().source == "store:calibration"
    match = gallery.verify("Alice", _unit(1), details={"probe": "p.jpg"})
    assert match.match and match.score == pytest.approx(1.0, abs=1e-5) and match.threshold == 0.9
    no_match = gallery.verify(f"#{alice}", _unit(9), policy="mean")
    assert not no_match.match
    unknown = gallery.identify(_unit(9), top_k=3)
    assert unknown.is_unknown and unknown.threshold == 0.95
    known = gallery.identify(_unit(2), top_k=3)
    assert known.identity_id == alice
    events = store.audit.query(operation="verify") + store.audit.query(operation="identify")
    assert [(e.decision, e.operator) for e in events] == [("match", "desk"), ("no-match", "desk"),
                                                          ("unknown", "desk"), ("identified", "desk")]
    assert events[0].details == {"policy": "max", "thresholds": "store:calibration", "probe": "p.jpg"}
    assert events[2].identity_id is None and events[2].score == pytest.approx(unknown.best.score)
    assert events[3].details["candidates"][0][0] == alice
    override = gallery.identify(_unit(9), thresholds=Thresholds(0.0, -1.0, source="slider"), audit=False)
    assert not override.is_unknown and len(store.audit.query(operation="identify")) == 2


def test_templates_of_another_dimension_are_never_compared(store: Store) -> None:
    alice = _enrol(store, "Alice", [1])
    with store.engine.connect() as connection:       # a stray 4-value template under the same model id
        connection.execute(text("INSERT INTO templates (identity_id, model_id, dim, embedding, created_at) "
                                "VALUES (:i, :m, 4, :e, '2025-01-01 00:00:00')"),
                           {"i": alice, "m": MODEL.model_id, "e": np.ones(4, np.float32).tobytes()})
        connection.commit()
    gallery = Gallery(store, MODEL)
    assert len(gallery.index) == 1 and gallery.skipped == 1 and gallery.status().skipped == 1
    assert gallery.verify("Alice", _unit(1)).score == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(IncompatibleError, match="4 values"):
        gallery.identify(np.ones(4, np.float32))
    with pytest.raises(IncompatibleError, match="dimension 8"):  # same model id, another size: refused
        Gallery(store, ModelSpec(MODEL.model_id, "m", 4))


def test_identity_without_templates_of_this_model_says_what_to_do(store: Store) -> None:
    store.identities.add("Nobody")
    _enrol(store, "Alice", [1])
    gallery = Gallery(store, MODEL)
    with pytest.raises(NotFoundError, match="reembed"):
        gallery.verify("Nobody", _unit(1))
    with pytest.raises(NotFoundError, match="Carol"):
        gallery.verify("Carol", _unit(1))
    status = gallery.status()
    assert (status.identities, status.searchable, status.templates, status.need_reembedding) == (2, 1, 1, 0)


def test_model_spec_from_a_real_embedder(tiny_embedder) -> None:
    spec = model_spec(tiny_embedder)
    assert (spec.model_id, spec.embedding_dim) == (tiny_embedder.model_id, 32)
    assert spec.sha256 == tiny_embedder.weights_sha256


# ---------------------------------------------------------------------------------- locked database (issue 15)
def test_identify_answers_while_another_program_holds_the_write_lock(tmp_path) -> None:
    import os
    import sqlite3

    setup = Store(tmp_path / "g.db")
    _enrol(setup, "Alice", [1])
    Gallery(setup, MODEL, operator="desk")            # the model is registered before the lock is taken
    setup.close()
    store = Store(tmp_path / "g.db", busy_timeout_s=0.2)
    gallery = Gallery(store, MODEL, operator="desk")   # opening needs no write: the model is known
    other = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")                  # another program holds the write lock
    try:
        decision = gallery.identify(_unit(1))
        assert decision.best.name == "Alice" and not decision.is_unknown       # answered anyway
        queue = store.audit.queue_path
        assert store.audit.pending() == 1 and oct(os.stat(queue).st_mode & 0o777) == "0o600"
        gallery.record_failure("verify", NotFoundError("no identity 'Zed'"), identity="Zed")   # a failed attempt too
        assert store.audit.pending() == 2
    finally:
        other.rollback()
        other.close()
    assert [e.operation for e in store.audit.query()] == ["enroll"]  # nothing new in the table: it was locked
    gallery.verify("Alice", _unit(1))                                 # the next audit write empties the queue
    events = store.audit.query()[1:]
    assert [(e.operation, e.decision) for e in events] == [("identify", "identified"), ("verify", "failed"),
                                                           ("verify", "match")]
    assert events[0].time <= events[2].time and events[1].details["exit_code"] == "not_found"
    assert store.audit.pending() == 0
    store.close()


def test_a_decision_that_cannot_be_queued_says_it_was_not_recorded(tmp_path) -> None:
    import sqlite3

    from faceapp.core.errors import DatabaseError

    setup = Store(tmp_path / "g.db")
    _enrol(setup, "Alice", [1])
    Gallery(setup, MODEL, operator="desk")
    setup.close()
    store = Store(tmp_path / "g.db", busy_timeout_s=0.2)
    gallery = Gallery(store, MODEL, operator="desk")
    store.audit.queue_path.mkdir()                    # the queue cannot be written (a folder in its place)
    other = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseError, match="NOT recorded"):
            gallery.identify(_unit(1))
    finally:
        other.rollback()
        other.close()
        store.close()
