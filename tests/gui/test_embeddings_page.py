"""The Embeddings tab on a real gallery (AT&T faces aligned by MediaPipe, a real model folder, SQLite):
the projection renders every enrolled identity, hovering shows a template's face, clicking opens the
identity, the heat map reads identity pairs, and the loss-geometry view trains and draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QPointF

from faceapp.storage import Store
from tests.services.analyst_data import enrol_att, model_and_gallery


def _screen_pos(page, x: float, y: float) -> QPoint:  # noqa: ANN001
    """Widget pixel of a point in the projection's view coordinates."""
    widget = page.projection_plot.widget
    scene = page.projection_plot.plot_item.vb.mapViewToScene(QPointF(x, y))
    return widget.mapFromScene(scene)


def test_projection_renders_the_gallery_hover_click_and_heatmap(open_window, qtbot, att: Path, mediapipe_models: Path,
                                                                tmp_path: Path) -> None:
    model, db, embedder = model_and_gallery(tmp_path, att, range(1, 5), per_subject=3)
    window = open_window("--db", str(db), "--model", str(model), "--page", "embeddings")
    page = window.page("embeddings")
    qtbot.waitUntil(lambda: page.points is not None and not page.job.busy, timeout=30000)

    assert len(page.points) == 12 and page.points.identity_count == 4
    assert sorted(item.name() for item in page.scatter_items) == ["s1", "s2", "s3", "s4"]
    assert sum(len(item.points()) for item in page.scatter_items) == 12
    assert page.coords.shape == (12, 2) and np.isfinite(page.coords).all()
    assert all(t is not None and t.shape == (64, 64, 3) for t in page.points.thumbnails)
    assert "12 templates of 4 identities" in page.info_label.text()

    page.projection_plot.widget.resize(800, 600)
    qtbot.wait(50)
    item = page.scatter_items[0]
    point = item.points()[0]
    row = int(point.data())
    qtbot.mouseMove(page.projection_plot.widget.viewport(), _screen_pos(page, point.pos().x(), point.pos().y()))
    qtbot.waitUntil(lambda: page.hover_label.isVisible(), timeout=3000)
    assert page.hovered_row is not None and page.points.name_of(page.hovered_row) == item.name()
    assert page.hover_label.pixmap() is not None and not page.hover_label.pixmap().isNull()
    assert page.hover_name.isVisible() and page.hover_name.text() == item.name()      # the face AND the name
    page.show_hover(None)
    assert not page.hover_label.isVisible()

    item.sigClicked.emit(item, [point], None)                       # what a click on the point emits
    assert window.current_page.key == "identities"
    identities = window.page("identities")
    qtbot.waitUntil(lambda: identities.current_identity_id == int(page.points.identity_ids[row]), timeout=10000)

    ids, matrix = page.similarity
    assert matrix.shape == (4, 4) and page.heat_values.shape == (4, 4)
    assert page.heat_image.image.shape == (4, 4)
    assert page.cell_text(0, 1).startswith("s1 vs s2: mean cosine ")
    assert page.heat_values[0, 1] == page.heat_values[1, 0]

    for plot, name in ((page.heat_plot, "heat.svg"), (page.projection_plot, "projection.png")):
        assert plot.export(tmp_path / name).stat().st_size > 1000          # both export formats work

    window.show_page("embeddings")
    before = page.coords.copy()
    page.method_box.setCurrentIndex(page.method_box.findData("tsne"))
    qtbot.waitUntil(lambda: not page.job.busy and not np.array_equal(page.coords, before), timeout=60000)
    assert "t-SNE" in page.projection_plot.title_label.text() and "t-SNE" in page.info_label.text()

    with Store(db) as store:                                        # a new identity appears after gallery_changed
        enrol_att(store, embedder, att, [5], per_subject=2)
    window.ctx.gallery_changed.emit()
    qtbot.waitUntil(lambda: page.points is not None and page.points.identity_count == 5 and not page.job.busy,
                    timeout=60000)
    assert len(page.scatter_items) == 5


def test_a_method_chosen_during_the_load_is_applied_after_it(open_window, qtbot, att: Path, mediapipe_models: Path,
                                                            tmp_path: Path) -> None:
    model, db, _embedder = model_and_gallery(tmp_path, att, range(1, 4), per_subject=3)
    window = open_window("--db", str(db), "--model", str(model), "--page", "embeddings", wait=False)
    page = window.page("embeddings")
    qtbot.waitUntil(lambda: page.job.busy or page.points is not None, timeout=30000)
    during_load = page.job.busy and page.points is None            # the first load (PCA) is running...
    page.method_box.setCurrentIndex(page.method_box.findData("tsne"))   # ...when the operator picks t-SNE
    qtbot.waitUntil(lambda: page.coords_method == "t-SNE" and not page.job.busy, timeout=60000)
    assert "t-SNE" in page.projection_plot.title_label.text() and "t-SNE" in page.info_label.text()
    assert page.coords.shape == (9, 2)
    assert during_load                                             # (the case this test is about did happen)


def test_loss_geometry_trains_and_draws(open_window, qtbot, att: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    window = open_window("--db", str(tmp_path / "g.db"), "--page", "embeddings")
    page = window.page("embeddings")
    page.tabs.setCurrentIndex(2)
    page.geo_folder.setText(str(att))
    page.geo_identities.setValue(4)
    page.geo_steps.setValue(40)
    for name, check in page.loss_checks.items():
        check.setChecked(name in ("softmax", "arcface"))
    page.geo_dim.setCurrentIndex(1)                                 # 3-D sphere
    page.train_geometry()
    qtbot.waitUntil(lambda: page.geometry is not None and not page.geo_job.busy, timeout=60000)
    assert set(page.geometry.runs) == {"softmax", "arcface"} and page.geometry.dim == 3
    arc = page.geo_panels["arcface"]
    assert arc.run is page.geometry.runs["arcface"] and arc.caption.startswith("acc ")
    assert page.geo_panels["center"].run is None and page.geo_panels["center"].caption == "not selected"
    assert len(arc.plot_item.items) > 5 and page.yaw.isEnabled()
    page.yaw.setValue(-60)
    assert arc.yaw == -60
    assert "s1" in page.geo_info.text()


def test_an_empty_gallery_shows_a_designed_empty_state(open_window, qtbot, tmp_path: Path) -> None:
    """Nobody enrolled: a sentence saying so and where to enrol, not "Loading the gallery: failed"."""
    window = open_window("--db", str(tmp_path / "empty.db"), "--page", "embeddings")
    page = window.page("embeddings")
    qtbot.waitUntil(lambda: page.model.empty is not None and not page.job.busy, timeout=30000)
    assert "No identities enrolled yet" in page.empty_text and "Enroll" in page.empty_text
    assert page.empty_label.isVisible()
    assert "failed" not in page.job.status.text()
    assert page.info_label.text() == page.empty_text
    assert page.points is None and page.scatter_items == []
