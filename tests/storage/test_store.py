"""Identity store behaviour on real SQLite files: identities, enrolment transactions, deletion without
orphans, models, thresholds, audit and the gallery rows the index is built from."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import text

from faceapp.core.errors import IncompatibleError, NotFoundError
from faceapp.storage import AuditEntry, FieldError, ModelSpec, NameInUseError, NewIdentity, NewSample, Store
from faceapp.storage.maintenance import consistency_counts

DIM = 16
MODEL = ModelSpec(model_id="tiny@000000000001", name="tiny", embedding_dim=DIM, sha256="0" * 64)


def _table_counts(path) -> dict[str, int]:
    with sqlite3.connect(path) as raw:
        return {t: raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("identities", "crops", "templates", "audit_events")}


def test_new_store_is_sqlite_wal_with_foreign_keys(store: Store, db_path, model) -> None:
    assert model == MODEL   # the conftest fixtures and this module agree
    assert db_path.is_file()
    assert store.upgraded and store.schema_status().up_to_date
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == int(store.busy_timeout_s * 1000)
    reopened = Store(db_path)
    assert not reopened.upgraded
    reopened.close()


def test_identity_add_find_list_rename_update(store: Store) -> None:
    alice = store.identities.add("  Alice   Liddell ", external_id="E-1", notes="front desk")
    assert alice.name == "Alice Liddell" and alice.template_count == 0
    store.identities.add("Bob")
    assert store.identities.get(f"#{alice.id}").name == "Alice Liddell"
    assert store.identities.get(alice.id).external_id == "E-1"
    assert [i.name for i in store.identities.list()] == ["Alice Liddell", "Bob"]
    assert [i.name for i in store.identities.list("e-1")] == ["Alice Liddell"]
    assert [i.name for i in store.identities.list("BO")] == ["Bob"]
    assert store.identities.find("Carol") is None
    with pytest.raises(NotFoundError, match="Carol"):
        store.identities.get("Carol")
    with pytest.raises(NameInUseError, match="Bob"):
        store.identities.add("Bob")
    with pytest.raises(NameInUseError, match="E-1"):
        store.identities.add("Other", external_id="E-1")
    with pytest.raises(NameInUseError):
        store.identities.rename("Alice Liddell", "Bob")
    with pytest.raises(FieldError, match="empty"):
        store.identities.rename("Bob", "   ")
    consent = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    renamed = store.identities.update("Alice Liddell", name="Alice", notes=None, consent_at=consent, operator="op1")
    assert renamed.name == "Alice" and renamed.notes is None and renamed.consent_at == consent
    assert renamed.external_id == "E-1"                       # untouched fields keep their value
    assert store.identities.count() == 2
    rename_event = store.audit.query(operation="rename")[-1]
    assert rename_event.details["previous_name"] == "Alice Liddell" and rename_event.operator == "op1"


def test_enrol_writes_identity_crops_templates_and_audit_together(store: Store, make_samples) -> None:
    before = store.revision()
    record = store.templates.enroll(NewIdentity("Alice", notes="n"), make_samples(3), MODEL, operator="op")
    assert record.created and len(record.crop_ids) == 3 and len(record.template_ids) == 3
    assert record.identity.crop_count == 3 and record.identity.template_counts == {MODEL.model_id: 3}
    assert store.revision() == before + 1
    templates = store.templates.for_identity("Alice")
    assert [t.crop_id for t in templates] == list(record.crop_ids)
    assert templates[0].embedding.dtype == np.float32 and templates[0].embedding.shape == (DIM,)
    crops = store.templates.crops("Alice")
    assert crops[0].image().shape == (112, 112, 3)
    event = store.audit.query(operation="enroll")[-1]
    assert (event.identity_name, event.decision, event.details["templates"]) == ("Alice", "created", 3)
    added = store.templates.enroll("Alice", make_samples(2, seed=1), MODEL)
    assert not added.created and added.identity.template_count == 5


def test_enrol_is_all_or_nothing(store: Store, make_samples, db_path) -> None:
    store.templates.enroll(NewIdentity("Bob"), make_samples(1), MODEL)
    counts = _table_counts(db_path)
    bad = make_samples(2) + [NewSample(crop=None, embedding=np.ones(DIM + 1, np.float32))]
    with pytest.raises(IncompatibleError, match="values"):
        store.templates.enroll(NewIdentity("Alice"), bad, MODEL)
    with pytest.raises(NameInUseError):                       # fails inside the transaction, after checks
        store.templates.enroll(NewIdentity("Bob"), make_samples(2), MODEL)
    with pytest.raises(IncompatibleError, match="dimension"):  # model registered with another size
        store.templates.enroll(NewIdentity("Carol"), make_samples(2, dim=8),
                               ModelSpec(MODEL.model_id, MODEL.name, 8))
    assert _table_counts(db_path) == counts
    assert store.identities.find("Alice") is None and store.identities.find("Carol") is None


def test_delete_identity_removes_templates_and_crops_without_orphans(store: Store, make_samples, db_path) -> None:
    other_model = ModelSpec("other@000000000002", "other", 8)
    alice = store.templates.enroll(NewIdentity("Alice"), make_samples(3), MODEL).identity
    store.templates.enroll("Alice", make_samples(2, dim=8, crops=False), other_model)
    store.templates.enroll(NewIdentity("Bob"), make_samples(2, seed=5), MODEL)
    store.audit.append(AuditEntry("verify", identity_id=alice.id, identity_name="Alice", score=0.9))
    report = store.identities.delete("Alice", operator="op")
    assert (report.templates, report.crops) == (5, 3)
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT count(*) FROM templates WHERE identity_id=?", (alice.id,)).fetchone()[0] == 0
        assert raw.execute("SELECT count(*) FROM crops WHERE identity_id=?", (alice.id,)).fetchone()[0] == 0
        assert raw.execute("SELECT count(*) FROM identities WHERE id=?", (alice.id,)).fetchone()[0] == 0
        assert raw.execute("SELECT count(*) FROM templates").fetchone()[0] == 2      # Bob's untouched
    assert set(store.uow.read(consistency_counts).values()) == {0}
    verify_event = store.audit.query(operation="verify")[0]
    assert verify_event.identity_id is None and verify_event.identity_name == "Alice"   # explainable later
    rows = store.templates.gallery_rows(MODEL.model_id, DIM)
    assert set(rows.identity_ids.tolist()) == {store.identities.get("Bob").id}


def test_delete_can_forget_the_name_in_the_audit_log(store: Store, make_samples) -> None:
    alice = store.templates.enroll(NewIdentity("Alice"), make_samples(1), MODEL).identity
    store.audit.append(AuditEntry("verify", identity_id=alice.id, identity_name="Alice", score=0.9))
    store.identities.delete("Alice", forget_audit=True)
    names = [e.identity_name for e in store.audit.query()]
    assert "Alice" not in names


def test_foreign_keys_cascade_at_the_database_level(store: Store, make_samples) -> None:
    alice = store.templates.enroll(NewIdentity("Alice"), make_samples(2), MODEL).identity
    with store.engine.connect() as connection:
        connection.execute(text("DELETE FROM identities WHERE id = :i"), {"i": alice.id})
        connection.commit()
        assert connection.execute(text("SELECT count(*) FROM templates")).scalar() == 0
        assert connection.execute(text("SELECT count(*) FROM crops")).scalar() == 0


def test_delete_sample_removes_its_crop_and_every_models_template(store: Store, make_samples) -> None:
    record = store.templates.enroll(NewIdentity("Alice"), make_samples(2), MODEL)
    other = ModelSpec("other@000000000002", "other", 4)
    store.templates.add_crop_templates(other, [record.crop_ids[0]], np.ones((1, 4), np.float32))
    assert store.templates.delete_sample(record.template_ids[0]) == 2
    info = store.identities.get("Alice")
    assert info.crop_count == 1 and info.template_counts == {MODEL.model_id: 1}
    with pytest.raises(NotFoundError):
        store.templates.delete_sample(record.template_ids[0])


def test_models_and_thresholds(store: Store) -> None:
    registered = store.models.register(ModelSpec("m@1", "m", 128, folder="/models/m", metrics={"cfp_ff": 0.9}))
    assert registered.metrics == {"cfp_ff": 0.9} and store.models.get("m@1").embedding_dim == 128
    with pytest.raises(IncompatibleError, match="128"):
        store.models.register(ModelSpec("m@1", "m", 512))
    assert store.thresholds.get("m@1") is None
    when = datetime(2025, 1, 2, tzinfo=timezone.utc)
    saved = store.thresholds.set(ModelSpec("m@1", "m", 128), verify=0.41, identify=0.47, target_far=1e-3,
                                 source="cfp-ff calibration", calibrated_at=when)
    assert (saved.verify, saved.identify, saved.target_far, saved.calibrated_at) == (0.41, 0.47, 1e-3, when)
    store.thresholds.set(ModelSpec("m@1", "m", 128), verify=0.5, identify=0.6)
    assert store.thresholds.get("m@1").source == "manual"
    with pytest.raises(FieldError, match="verify"):
        store.thresholds.set(ModelSpec("m@1", "m", 128), verify=1.5, identify=0.5)
    assert [m.model_id for m in store.models.list()] == ["m@1"]


def test_audit_query_filters(store: Store) -> None:
    store.audit.append(AuditEntry("verify", identity_name="A", score=0.7, threshold=0.5, decision="match",
                                  operator="op", details={"policy": "max"}))
    store.audit.append(AuditEntry("identify", score=0.2, threshold=0.5, decision="unknown"))
    events = store.audit.query()
    assert [e.operation for e in events] == ["verify", "identify"]
    assert events[0].details == {"policy": "max"} and events[0].time.tzinfo is not None
    assert [e.operation for e in store.audit.query(operation="identify")] == ["identify"]
    assert store.audit.query(since=datetime.now(timezone.utc) + timedelta(minutes=1)) == []
    assert len(store.audit.query(since=datetime.now(timezone.utc) - timedelta(minutes=1))) == 2
    assert store.audit.query(newest_first=True, limit=1)[0].operation == "identify"


def test_gallery_rows_never_include_a_template_of_another_dimension(store: Store, make_samples) -> None:
    store.templates.enroll(NewIdentity("Alice"), make_samples(2), MODEL)
    with store.engine.connect() as connection:     # a legacy/corrupt row: same model id, 8 values
        connection.execute(text("INSERT INTO templates (identity_id, model_id, dim, embedding, created_at) "
                                "VALUES (1, :m, 8, :e, '2025-01-01 00:00:00')"),
                           {"m": MODEL.model_id, "e": np.ones(8, np.float32).tobytes()})
        connection.execute(text("INSERT INTO templates (identity_id, model_id, dim, embedding, created_at) "
                                "VALUES (1, :m, :d, :e, '2025-01-01 00:00:00')"),
                           {"m": MODEL.model_id, "d": DIM, "e": b"\x00" * 12})
        connection.commit()
    rows = store.templates.gallery_rows(MODEL.model_id, DIM)
    assert rows.embeddings.shape == (2, DIM) and rows.skipped == 2
    assert store.uow.read(consistency_counts)["dimension_mismatches"] == 1
    assert store.uow.read(consistency_counts)["damaged_embeddings"] == 1   # 12 bytes for 16 values


def test_gallery_changes_report_added_and_removed_rows(store: Store, make_samples) -> None:
    store.templates.enroll(NewIdentity("Alice"), make_samples(2), MODEL)
    first = store.templates.gallery_rows(MODEL.model_id, DIM)
    bob = store.templates.enroll(NewIdentity("Bob"), make_samples(3, seed=2), MODEL)
    store.templates.delete_sample(int(first.template_ids[0]))
    added, removed = store.templates.gallery_changes(MODEL.model_id, DIM, first.template_ids)
    assert added.template_ids.tolist() == list(bob.template_ids)
    assert removed.tolist() == [int(first.template_ids[0])]
    assert added.revision == store.revision() and added.names[bob.identity.id] == "Bob"


def test_crops_to_embed_and_idempotent_batches(store: Store, make_samples) -> None:
    record = store.templates.enroll(NewIdentity("Alice"), make_samples(3), MODEL)
    store.templates.enroll(NewIdentity("NoCrops"), make_samples(1, crops=False), MODEL)
    new = ModelSpec("new@000000000003", "new", 4)
    assert store.templates.count_crops_to_embed(new.model_id) == 3
    page = store.templates.crops_to_embed(new.model_id, limit=2)
    assert [c.id for c in page] == list(record.crop_ids[:2])
    vectors = np.eye(4, dtype=np.float32)[:2]
    assert store.templates.add_crop_templates(new, [c.id for c in page], vectors) == 2
    assert store.templates.add_crop_templates(new, [c.id for c in page], vectors) == 0   # already there
    assert store.templates.count_crops_to_embed(new.model_id) == 1
    assert store.templates.identities_without_crops() == [(store.identities.get("NoCrops").id, "NoCrops")]
    with pytest.raises(IncompatibleError):
        store.templates.add_crop_templates(new, [record.crop_ids[2]], np.ones((1, 5), np.float32))


def test_ids_are_never_reused_after_deletion(store: Store, make_samples) -> None:
    first = store.templates.enroll(NewIdentity("Alice"), make_samples(2), MODEL)
    store.identities.delete("Alice")
    second = store.templates.enroll(NewIdentity("Alice"), make_samples(2, seed=3), MODEL)
    assert second.identity.id > first.identity.id
    assert min(second.template_ids) > max(first.template_ids) and min(second.crop_ids) > max(first.crop_ids)


def test_one_store_shared_by_threads(store: Store, make_samples) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def enrol(number: int) -> int:
        return store.templates.enroll(NewIdentity(f"t{number}"), make_samples(2, seed=number), MODEL).identity.id

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(enrol, range(12)))
    assert len(set(ids)) == 12 and store.identities.count() == 12
    assert store.revision() == 12 and store.templates.counts_by_model()[MODEL.model_id]["templates"] == 24
