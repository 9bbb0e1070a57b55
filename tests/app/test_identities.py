"""The Identities page model without Qt: list and search, selection and detail, edits, deletes, export and
import on a real SQLite store, with the work run at once (``run_now``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from faceapp.app.identities import IdentitiesModel
from faceapp.storage import NewIdentity, Store
from tests.app.gallery_data import MODEL, samples

@pytest.fixture
def session(tmp_path):  # noqa: ANN201
    with Store(tmp_path / "gallery.db") as store:
        store.templates.enroll(NewIdentity("s1"), samples(3, 1, tagged=True), MODEL, operator="t")
        store.templates.enroll(NewIdentity("s2"), samples(2, 2, tagged=True), MODEL, operator="t")
        yield SimpleNamespace(store=store, embedder=SimpleNamespace(model_id=MODEL.model_id),
                              gallery=SimpleNamespace(operator="desk-1"))


@pytest.fixture
def model(session):  # noqa: ANN001, ANN201
    model = IdentitiesModel(session)
    model.events = []
    for name in ("listed", "detail_changed", "message", "gallery_changed"):
        getattr(model, name).connect(lambda *args, name=name: model.events.append((name, *args)))
    return model


def test_list_search_and_select(model, session):
    model.refresh()
    assert model.names() == ["s1", "s2"] and model.loads == 1 and model.count_text() == "2 identities"
    s1 = session.store.identities.get("s1")
    model.select(s1.id)
    assert model.detail.info.id == s1.id and len(model.detail.samples) == 3
    assert model.models_text(model.detail.samples[0])[0] == "tiny*"
    assert "3 for the active model" in model.meta_text(model.detail)
    model.set_search(" s2 ")
    model.refresh()                           # s1 filtered out: its detail is hidden, the selection kept
    assert model.names() == ["s2"] and model.detail is None and model.selected_id == s1.id
    assert model.count_text() == "1 identity matching 's2'"
    assert ("detail_changed", None) in model.events


def test_a_late_detail_for_another_identity_is_ignored(model, session):
    model.refresh()
    s1, s2 = (session.store.identities.get(n) for n in ("s1", "s2"))
    model.selected_id = s2.id
    from faceapp.app.identities import load_detail

    model._detail_loaded(load_detail(session.store, s1.id))
    assert model.detail is None


def test_edit_rename_and_a_taken_name(model, session):
    model.refresh()
    s1 = session.store.identities.get("s1")
    model.select(s1.id)
    model.save("Sam One", "X-1", None)
    info = session.store.identities.get(s1.id)
    assert (info.name, info.external_id) == ("Sam One", "X-1")
    assert ("message", "info", "Saved Sam One.") in model.events and ("gallery_changed",) in model.events
    assert session.store.audit.query(operation="rename")[-1].operator == "desk-1"
    with pytest.raises(Exception, match="s2"):       # run_now lets the error through; the GUI's runner reports it
        model.rename(s1.id, "s2")


def test_delete_a_sample_then_the_identity(model, session, tmp_path):
    model.refresh()
    s1 = session.store.identities.get("s1")
    model.select(s1.id)
    assert model.sample_problem(None) == ("info", "Select a sample in the table first.")
    sample = model.detail.samples[0]
    assert model.sample_problem(sample) is None
    model.delete_sample(sample.template_ids[0])
    assert session.store.identities.get(s1.id).template_count == 2
    from faceapp.storage.maintenance import backup

    kept = backup(session.store, tmp_path / "kept.db")
    moved = backup(session.store, tmp_path / "moved.db")
    moved.rename(tmp_path / "elsewhere.db")
    model.delete_identity(s1.id)
    assert session.store.identities.find(s1.id) is None and model.detail is None and model.selected_id is None
    assert any(e[0] == "message" and e[2].startswith("Deleted s1") and "erased from 1 backup" in e[2]
               for e in model.events)
    assert any(e[:2] == ("message", "warning") and str(moved) in e[2] and "rotate-key --full" in e[2]
               for e in model.events)
    with Store(kept) as copy:
        assert [i.name for i in copy.identities.list()] == ["s2"]


def test_export_then_import_into_another_store(model, session, tmp_path):
    archive = tmp_path / "g.zip"
    model.export_gallery(archive)
    assert archive.is_file() and model.last_transfer["identities"] == 2
    with Store(tmp_path / "other.db") as other:
        target = IdentitiesModel(SimpleNamespace(store=other, embedder=None, gallery=None))
        changed = []
        target.gallery_changed.connect(lambda: changed.append(True))
        target.import_gallery(archive)
        target.refresh()
        assert target.names() == ["s1", "s2"] and changed and target.last_transfer["identities"] == 2


def test_without_a_database_the_list_is_empty():
    model = IdentitiesModel(SimpleNamespace(store=None, embedder=None, gallery=None))
    model.refresh()
    model.save("x", None, None)
    assert model.rows == [] and not model.available
    assert model.count_text() == "No database" and model.count_text(loading=True) == "Loading..."


def test_a_damaged_database_is_an_error_state_not_an_empty_gallery(model, session, tmp_path):
    """The identities table is gone (a damaged file): the page says why and what to do, not "No identities yet"."""
    import sqlite3

    model.refresh()
    assert model.empty_state() is None
    connection = sqlite3.connect(tmp_path / "gallery.db")
    connection.execute("PRAGMA foreign_keys = OFF")
    connection.execute("DROP TABLE identities")
    connection.commit()
    connection.close()
    model.refresh()
    role, text = model.empty_state()
    assert role == "status-bad" and "identities" in text and "No identities yet" not in text
    assert "faceapp db check" in text and "--db" in text and model.count_text() == "Cannot read the identities"


def test_the_empty_states_say_what_is_missing(tmp_path):
    with Store(tmp_path / "empty.db") as store:
        model = IdentitiesModel(SimpleNamespace(store=store, embedder=None, gallery=None))
        model.refresh()
        assert model.empty_state() == ("muted", "No identities yet: enrol someone on the Enroll page.")
        model.set_search("zed")
        model.refresh()
        assert model.empty_state() == ("muted", "No identity matches 'zed'.")
    broken = IdentitiesModel(SimpleNamespace(store=None, embedder=None, gallery=None,
                                             errors={"database": "Opening the database: x.db is not a database"}))
    broken.refresh()
    role, text = broken.empty_state()
    assert role == "status-bad" and "x.db is not a database" in text and "Reload" in text
    assert broken.empty_state(loading=True) is None
