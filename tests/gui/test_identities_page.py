"""The Identities page on a real SQLite gallery: list, search, detail, edit, delete, export and import."""

from __future__ import annotations

import sqlite3

import pytest


def _identities(window, qtbot):  # noqa: ANN001, ANN202
    page = window.show_page("identities")
    qtbot.waitUntil(lambda: page.loads > 0 and len(page.rows) >= 1, timeout=20000)
    return page


def test_list_search_detail_and_edit(open_window, db_copy, qtbot):
    window = open_window("--db", str(db_copy))
    page = _identities(window, qtbot)
    assert page.names() == ["s1", "s2"]
    first = page.list.item(0)
    assert "5 template(s)" in first.text() and not first.icon().isNull()
    page.search.setText("s2")
    qtbot.waitUntil(lambda: page.names() == ["s2"], timeout=10000)
    page.search.clear()
    qtbot.waitUntil(lambda: page.names() == ["s1", "s2"], timeout=10000)
    s1 = window.ctx.store.identities.get("s1")
    assert page.select_identity(s1.id)
    qtbot.waitUntil(lambda: page.detail is not None and page.detail.info.id == s1.id, timeout=10000)
    assert page.table.rowCount() == 5
    assert page.table.item(0, 1).text() != "-" and page.table.item(0, 4).text().endswith("*")
    assert page.table.item(0, 0).icon().isNull() is False
    page.name_edit.setText("Sam One")
    page.external_edit.setText("X-1")
    page.save_changes()
    qtbot.waitUntil(lambda: "Sam One" in page.names(), timeout=10000)
    info = window.ctx.store.identities.get(s1.id)
    assert (info.name, info.external_id) == ("Sam One", "X-1")
    assert window.ctx.store.audit.query(operation="rename")[-1].details["previous_name"] == "s1"
    page.name_edit.setText("s2")                                   # taken: a clear error, nothing changes
    page.save_changes()
    qtbot.waitUntil(lambda: any("s2" in m for m in window.banners.messages("error")), timeout=10000)
    assert window.ctx.store.identities.get(s1.id).name == "Sam One"


def test_delete_a_sample_then_the_identity(open_window, db_copy, qtbot):
    window = open_window("--db", str(db_copy))
    page = _identities(window, qtbot)
    store = window.ctx.store
    s1 = store.identities.get("s1")
    page.select_identity(s1.id)
    qtbot.waitUntil(lambda: page.detail is not None and page.table.rowCount() == 5, timeout=10000)
    page.delete_sample(page.detail.samples[0].template_ids[0])
    qtbot.waitUntil(lambda: page.detail is not None and page.table.rowCount() == 4, timeout=10000)
    assert store.identities.get(s1.id).template_count == 4
    page.delete_identity(s1.id)
    qtbot.waitUntil(lambda: page.names() == ["s2"], timeout=10000)
    assert store.identities.find(s1.id) is None
    with sqlite3.connect(db_copy) as connection:                   # no orphans left behind
        orphans = connection.execute("SELECT (SELECT count(*) FROM templates WHERE identity_id = ?) + "
                                     "(SELECT count(*) FROM crops WHERE identity_id = ?)", (s1.id, s1.id)).fetchone()[0]
    assert orphans == 0
    live = window.page("live")
    qtbot.waitUntil(lambda: [live.claim_box.itemText(i).split()[0] for i in range(live.claim_box.count())] == ["s2"],
                    timeout=10000)


def test_export_then_import_into_another_workstation(open_window, db_copy, qtbot, tmp_path):
    window = open_window("--db", str(db_copy))
    page = _identities(window, qtbot)
    archive = tmp_path / "gallery.zip"
    page.export_gallery(archive)
    qtbot.waitUntil(lambda: page.last_transfer is not None, timeout=20000)
    assert archive.is_file() and page.last_transfer["identities"] == 2
    window.close()

    other = open_window("--db", str(tmp_path / "other.db"))
    page = other.show_page("identities")
    qtbot.waitUntil(lambda: page.loads > 0, timeout=20000)
    assert page.names() == []
    page.import_gallery(archive)
    qtbot.waitUntil(lambda: page.names() == ["s1", "s2"], timeout=20000)
    assert other.ctx.store.identities.get("s1").template_count == 5
    page.import_gallery(archive)                                  # again: names exist, the default stops
    qtbot.waitUntil(lambda: any("already exists" in m for m in other.banners.messages("error")), timeout=20000)
    page.import_gallery(tmp_path / "missing.zip")
    qtbot.waitUntil(lambda: any("missing.zip" in m for m in other.banners.messages("error")), timeout=20000)


@pytest.mark.parametrize("conflict", ["skip"])
def test_import_with_skip_keeps_existing(open_window, db_copy, qtbot, tmp_path, conflict):
    window = open_window("--db", str(db_copy))
    page = _identities(window, qtbot)
    archive = tmp_path / "g.zip"
    page.export_gallery(archive)
    qtbot.waitUntil(lambda: page.last_transfer is not None, timeout=20000)
    page.last_transfer = None
    page.import_gallery(archive, on_conflict=conflict)
    qtbot.waitUntil(lambda: page.last_transfer is not None, timeout=20000)
    assert page.last_transfer["skipped"] == 2 and page.names() == ["s1", "s2"]
