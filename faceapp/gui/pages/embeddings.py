"""Embeddings page: look at the active model's gallery and at what each loss does to a feature space.

- Projection: every stored template of the active model as a point (PCA always; t-SNE from
  scikit-learn; UMAP when installed), coloured by identity; hovering shows the template's crop and name,
  clicking opens the identity on the Identities page.
- Similarity: the identity-by-identity mean cosine similarity as a heat map (hover reads a cell).
- Loss geometry: a tiny network with a 2-D or 3-D embedding trained on a handful of identities with
  softmax, modified softmax, SphereFace, CosFace, ArcFace and center loss, side by side, features drawn on
  the circle/sphere with each class's weight direction (the SphereFace paper's Figures 2 and 3).

Loading, projecting and training run on workers (``faceapp.services.gallery_points``, ``projection``,
``geometry``). The view of ``faceapp.app.embeddings.EmbeddingsModel``, which holds the points, their
projection, the similarity matrix and the geometry study; this class draws them.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFormLayout, QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QSplitter, QTabWidget,
    QVBoxLayout, QWidget,
)

from faceapp.app.embeddings import EmbeddingsModel, geometry_choices, projection_methods
from faceapp.gui import theme as themes
from faceapp.gui.analyst.forms import PathEdit, int_box
from faceapp.gui.analyst.geometry_view import GeometryPanel
from faceapp.gui.analyst.jobs import JobPanel
from faceapp.gui.pages import Page, register_page
from faceapp.gui.plots import PlotPanel
from faceapp.gui.widgets.images import bgr_to_pixmap

log = logging.getLogger(__name__)

LEGEND_MAX = 12                  # identities named in the legend (beyond: hover tells)
TICKS_MAX = 40                   # identity names on the heat map's axes


def identity_colors(count: int, theme: themes.Theme) -> list[Any]:
    """One colour per identity: the theme's series colours, or evenly spread hues beyond them."""
    if count <= len(theme.series):
        return [pg.mkColor(theme.series_color(i)) for i in range(count)]
    value = 0.95 if theme.name == "dark" else 0.7
    return [pg.hsvColor(i / count, sat=0.7, val=value) for i in range(count)]


@register_page("embeddings", "Embeddings", order=60, tooltip="Look at the gallery's embedding space", lazy=True)
class EmbeddingsPage(Page):
    """The gallery's embedding space and the geometry of the losses."""

    identity_requested = Signal(int)

    def __init__(self, ctx, parent: QWidget | None = None) -> None:  # noqa: ANN001 - AppContext
        super().__init__(ctx, parent)
        self.model = EmbeddingsModel(ctx)
        self.hovered_row: int | None = None
        self._hover_pos: QPoint | None = None
        self._scatters: list[pg.ScatterPlotItem] = []
        self._build()
        model = self.model
        model.start_job, model.start_geometry = self.job.start, self.geo_job.start
        model.loaded.connect(self._loaded)
        model.projected.connect(self._draw_projection)
        model.info_changed.connect(self.info_label.setText)
        model.load_failed.connect(self._load_failed)
        model.geometry_done.connect(self._geometry_done)
        model.geometry_failed.connect(self._geometry_failed)
        model.error.connect(self.ctx.report_error)
        ctx.gallery_changed.connect(self._gallery_changed)
        ctx.services_changed.connect(self._gallery_changed)
        themes.notifier().changed.connect(self._theme_changed)

    # the model's state, as the tests read it
    points = property(lambda self: self.model.points)
    coords = property(lambda self: self.model.coords)
    similarity = property(lambda self: self.model.similarity)
    geometry = property(lambda self: self.model.geometry)
    stale = property(lambda self: self.model.stale)
    coords_method = property(lambda self: self.model.coords_method)
    heat_values = property(lambda self: self.model.heat_values)
    heat_order = property(lambda self: self.model.heat_order)

    # ================================================================ layout
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._projection_tab(), "Projection")
        self.tabs.addTab(self._similarity_tab(), "Similarity")
        self.tabs.addTab(self._geometry_tab(), "Loss geometry")
        layout.addWidget(self.tabs)

    def _projection_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        row = QHBoxLayout()
        row.addWidget(QLabel("Method"))
        self.method_box = QComboBox()
        for key, label in projection_methods().items():
            self.method_box.addItem(label, key)
        self.method_box.setToolTip("PCA: linear, fast; t-SNE: neighbourhoods (scikit-learn); UMAP when installed")
        self.method_box.currentIndexChanged.connect(self.reproject)
        row.addWidget(self.method_box)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the gallery again and re-project it")
        self.refresh_button.clicked.connect(self.refresh)
        row.addWidget(self.refresh_button)
        self.job = JobPanel(self.ctx)
        self.job.job_finished.connect(self._catch_up)
        row.addWidget(self.job, 1)
        layout.addLayout(row)
        self.info_label = QLabel("The active model's templates appear here.")
        self.info_label.setProperty("role", "muted")
        self.info_label.setWordWrap(True)
        layout.addWidget(self.info_label)
        self.projection_plot = PlotPanel("Gallery embeddings", x_label="", y_label="", legend="outside")
        self.projection_plot.plot_item.setAspectLocked(False)
        layout.addWidget(self.projection_plot, 1)
        self.hover_box = QFrame(self.projection_plot.widget)      # the hovered template: face and name
        self.hover_box.setObjectName("embedding_hover")
        self.hover_box.setStyleSheet("QFrame#embedding_hover { border: 1px solid gray; }")
        self.hover_box.setAutoFillBackground(True)
        box_layout = QVBoxLayout(self.hover_box)
        box_layout.setContentsMargins(3, 3, 3, 3)
        box_layout.setSpacing(2)
        self.hover_label = QLabel()
        self.hover_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        box_layout.addWidget(self.hover_label)
        self.hover_name = QLabel()
        self.hover_name.setObjectName("embedding_hover_name")
        self.hover_name.setAlignment(Qt.AlignmentFlag.AlignCenter)
        bold = self.hover_name.font()
        bold.setBold(True)
        self.hover_name.setFont(bold)
        box_layout.addWidget(self.hover_name)
        self.hover_box.hide()
        self.empty_label = QLabel(self.projection_plot.widget)   # the designed empty state, over the plot
        self.empty_label.setObjectName("embeddings_empty")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setProperty("role", "heading")
        self.empty_label.hide()
        return tab

    def _similarity_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        self._cell_intro = ("Mean cosine similarity between the templates of two identities (diagonal: between "
                            "the templates of one identity).")
        self.cell_label = QLabel(self._cell_intro)
        self.cell_label.setProperty("role", "muted")
        self.cell_label.setWordWrap(True)
        layout.addWidget(self.cell_label)
        self.heat_plot = PlotPanel("Identity similarity", legend=False)
        item = self.heat_plot.plot_item
        item.showGrid(x=False, y=False)
        item.invertY(True)
        item.setAspectLocked(True)
        self.heat_image = pg.ImageItem()
        item.addItem(self.heat_image)
        self.color_bar = item.addColorBar(self.heat_image, colorMap="viridis", values=(0.0, 1.0))
        self.heat_plot.widget.scene().sigMouseMoved.connect(self._heat_hovered)
        layout.addWidget(self.heat_plot, 1)
        return tab

    def _geometry_tab(self) -> QWidget:
        GEOMETRY_LOSSES, LOSS_TITLES, default_folder = geometry_choices()   # noqa: N806 - constants

        tab = QWidget()
        outer = QHBoxLayout(tab)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(splitter)
        controls = QWidget()
        form = QFormLayout(controls)
        form.setContentsMargins(0, 0, 6, 0)
        intro = QLabel("A tiny network with a 2-D or 3-D embedding, trained on a handful of identities with each "
                       "loss from the same start. Points: features on the unit circle/sphere (2-D: the raw features "
                       "faint inside); lines: class weight directions.")
        intro.setWordWrap(True)
        intro.setProperty("role", "muted")
        form.addRow(intro)
        self.geo_folder = PathEdit("labelled folder", caption="Identities for the geometry view")
        self.geo_folder.setText(str(default_folder))
        form.addRow("Faces", self.geo_folder)
        self.geo_identities = int_box(6, 2, 8, tooltip="How many identities (classes)")
        form.addRow("Identities", self.geo_identities)
        self.geo_dim = QComboBox()
        self.geo_dim.addItem("2-D (circle)", 2)
        self.geo_dim.addItem("3-D (sphere)", 3)
        self.geo_dim.setToolTip("Embedding size of the toy network: 2-D features on a circle, 3-D on a sphere")
        self.geo_dim.currentIndexChanged.connect(self._dim_changed)
        form.addRow("Embedding", self.geo_dim)
        self.geo_steps = int_box(300, 20, 5000, tooltip="Full-batch training steps per loss")
        form.addRow("Steps", self.geo_steps)
        grid = QGridLayout()
        self.loss_checks: dict[str, QCheckBox] = {}
        for i, name in enumerate(GEOMETRY_LOSSES):
            check = QCheckBox(LOSS_TITLES[name])
            check.setChecked(True)
            check.setToolTip(f"Train the toy network with {LOSS_TITLES[name]} and draw its features")
            self.loss_checks[name] = check
            grid.addWidget(check, i // 2, i % 2)
        form.addRow(grid)
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Train the toy network once per chosen loss, from the same start (on a worker)")
        self.train_button.clicked.connect(self.train_geometry)
        form.addRow(self.train_button)
        self.geo_job = JobPanel(self.ctx)
        self.geo_job.job_finished.connect(self._geometry_finished)
        form.addRow(self.geo_job)
        self.yaw = QSlider(Qt.Orientation.Horizontal)
        self.yaw.setRange(-180, 180)
        self.yaw.setValue(30)
        self.pitch = QSlider(Qt.Orientation.Horizontal)
        self.pitch.setRange(-90, 90)
        self.pitch.setValue(20)
        self.yaw.setToolTip("Turn the 3-D spheres left and right (degrees)")
        self.pitch.setToolTip("Tilt the 3-D spheres up and down (degrees)")
        for slider in (self.yaw, self.pitch):
            slider.valueChanged.connect(self._rotate)
            slider.setEnabled(False)
        form.addRow("Turn", self.yaw)
        self.tilt_label = QLabel("Tilt")
        form.addRow(self.tilt_label, self.pitch)
        self.geo_info = QLabel("")
        self.geo_info.setTextFormat(Qt.TextFormat.RichText)
        self.geo_info.setWordWrap(True)
        self.geo_info.setProperty("role", "muted")
        form.addRow(self.geo_info)
        splitter.addWidget(controls)
        panels = QWidget()
        panel_grid = QGridLayout(panels)
        panel_grid.setContentsMargins(0, 0, 0, 0)
        self.geo_panels: dict[str, GeometryPanel] = {}
        for i, name in enumerate(GEOMETRY_LOSSES):
            panel = GeometryPanel(LOSS_TITLES[name])
            panel.setMinimumSize(160, 160)
            self.geo_panels[name] = panel
            panel_grid.addWidget(panel, i // 3, i % 3)
        splitter.addWidget(panels)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([300, 900])
        return tab

    # ================================================================ gallery
    def refresh(self) -> None:
        """Read the active model's gallery, project it and compute the similarity matrix (on a worker)."""
        if self.job.busy:
            return
        self.model.refresh(self.method_box.currentData(), self.method_box.currentText())

    def reproject(self) -> None:
        """Project the loaded gallery with the chosen method (on a worker); reads the gallery first if needed."""
        if self.model.needs_refresh():
            self.refresh()
            return
        if self.job.busy:
            return
        self.model.reproject(self.method_box.currentData(), self.method_box.currentText())

    def _catch_up(self) -> None:
        """After a job: what changed while it ran (the gallery, or the method chosen) is done now."""
        action = self.model.catch_up_needed(self.job.outcome, self.method_box.currentText())
        if action == "refresh" and self.isVisible():
            self.refresh()
        elif action == "reproject":
            self.reproject()

    def _load_failed(self, _error: BaseException) -> None:
        self._draw_projection()
        self._draw_heatmap()

    def _loaded(self) -> None:
        if self.points is not None:
            self.cell_label.setText(self._cell_intro)     # a new gallery: an old reading (or empty state) is stale
        self._draw_projection()
        self._draw_heatmap()

    def identity_order(self) -> list[int]:
        """Identity ids in display order (sorted by name)."""
        return self.model.identity_order()

    def _draw_projection(self) -> None:
        plot = self.projection_plot
        plot.clear()
        self._scatters = []
        self.hovered_row = None
        self.hover_box.hide()
        self._show_empty_state()
        if plot.legend is not None:
            plot.legend.setVisible(self.points is not None)   # no empty legend box beside an empty plot
        if self.points is None or self.coords is None:
            return
        plot.title_label.setText(f"Gallery embeddings ({self.coords_method})")
        theme = themes.current_theme()
        order = self.identity_order()
        colors = identity_colors(len(order), theme)
        ids = self.points.identity_ids
        for k, identity_id in enumerate(order):
            rows = np.flatnonzero(ids == identity_id)
            name = self.points.names.get(identity_id, f"#{identity_id}") if len(order) <= LEGEND_MAX else None
            scatter = pg.ScatterPlotItem(self.coords[rows, 0], self.coords[rows, 1], size=11, data=rows.tolist(),
                                         pen=pg.mkPen(theme.background), brush=pg.mkBrush(colors[k]), name=name,
                                         hoverable=True, tip=None, hoverSize=15)
            scatter.sigHovered.connect(self._point_hovered)
            scatter.sigClicked.connect(self._point_clicked)
            plot.plot_item.addItem(scatter)             # named items join the legend by themselves
            self._scatters.append(scatter)
        plot.plot_item.autoRange()

    def _show_empty_state(self) -> None:
        """The designed empty state over the plot and the heat map (nobody enrolled for this model)."""
        text = self.model.empty_text()
        self.empty_label.setText(text)
        self.empty_label.setVisible(bool(text))
        if text:
            widget = self.projection_plot.widget
            self.empty_label.setGeometry(widget.width() // 8, widget.height() // 3, widget.width() * 3 // 4,
                                         widget.height() // 3)
            self.empty_label.raise_()
            self.cell_label.setText(text)
            self.projection_plot.title_label.setText("Gallery embeddings")

    @property
    def empty_text(self) -> str:
        return self.empty_label.text() if not self.empty_label.isHidden() else ""

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API: keep the empty state centred
        super().resizeEvent(event)
        if not self.empty_label.isHidden():
            self._show_empty_state()

    @property
    def scatter_items(self) -> list[pg.ScatterPlotItem]:
        return list(self._scatters)

    def _point_hovered(self, _item: Any, points: Any, event: Any) -> None:
        if getattr(event, "exit", False) or len(points) == 0:
            self.show_hover(None)
            return
        row = int(points[0].data())
        pos = self.projection_plot.widget.mapFromScene(event.scenePos())
        self.show_hover(row, QPoint(int(pos.x()), int(pos.y())))

    def show_hover(self, row: int | None, pos: QPoint | None = None) -> None:
        """Show the thumbnail and name of template ``row`` near ``pos`` (None hides it)."""
        if row is None or self.points is None:
            self.hovered_row = None
            self.hover_box.hide()
            return
        self.hovered_row, self._hover_pos = row, pos
        name = self.points.name_of(row)
        thumb = self.points.thumbnails[row] if row < len(self.points.thumbnails) else None
        if thumb is not None:
            self.hover_label.setPixmap(bgr_to_pixmap(thumb, 88))
        else:
            self.hover_label.clear()
        self.hover_label.setVisible(thumb is not None)
        self.hover_name.setText(self.hover_name.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight, 220))
        self.hover_box.setAccessibleName(name)
        self.hover_box.setToolTip(name)
        label = self.hover_box
        label.adjustSize()
        where = pos or QPoint(10, 10)
        widget = self.projection_plot.widget
        x = min(max(0, where.x() + 14), max(0, widget.width() - label.width()))
        y = min(max(0, where.y() + 14), max(0, widget.height() - label.height()))
        label.move(x, y)
        label.show()
        label.raise_()
        self.info_label.setToolTip(name)

    def _point_clicked(self, _item: Any, points: Any, _event: Any) -> None:
        if len(points) and self.points is not None:
            self.open_identity(self.model.identity_at(int(points[0].data())))

    def open_identity(self, identity_id: int) -> None:
        """Show the identity on the Identities page (emits ``identity_requested`` as well)."""
        self.identity_requested.emit(identity_id)
        window = self.window()
        show_page = getattr(window, "show_page", None)
        if show_page is None:
            return
        try:
            page = show_page("identities")
        except KeyError:
            self.ctx.notify("The Identities page is not available in this window.", "warning")
            return
        select = getattr(page, "select_identity", None)
        if select is not None:
            select(identity_id)

    # ================================================================ heat map
    def _draw_heatmap(self) -> None:
        heat = self.model.heat_map()
        if heat is None:
            self.heat_image.clear()
            return
        order, shown, low, high = heat
        self.heat_image.setImage(np.nan_to_num(shown, nan=low).T, levels=(low, high))
        self.color_bar.setLevels((low, high))
        names = self.model.names(order)
        ticks = [[(k + 0.5, n) for k, n in enumerate(names)]] if len(names) <= TICKS_MAX else [[]]
        for axis in ("bottom", "left"):
            self.heat_plot.plot_item.getAxis(axis).setTicks(ticks)
        self.heat_plot.plot_item.autoRange()

    def cell_text(self, i: int, j: int) -> str:
        """Read-out of heat-map cell (row i, column j)."""
        return self.model.cell_text(i, j)

    def _heat_hovered(self, scene_pos: Any) -> None:
        if self.similarity is None or self.points is None:
            return
        view = self.heat_plot.plot_item.vb.mapSceneToView(scene_pos)
        i, j = int(np.floor(view.y())), int(np.floor(view.x()))
        k = len(self.model.heat_order)
        if 0 <= i < k and 0 <= j < k:
            self.cell_label.setText(self.cell_text(i, j))

    # ================================================================ geometry
    def geometry_config(self) -> Any:
        """The GeometryConfig of the form."""
        losses = tuple(name for name, check in self.loss_checks.items() if check.isChecked())
        return self.model.geometry_config(self.geo_folder.text(), self.geo_identities.value(),
                                          int(self.geo_dim.currentData()), self.geo_steps.value(), losses)

    def train_geometry(self) -> None:
        """Train the toy network with each chosen loss (on a worker) and draw the results."""
        if self.geo_job.busy:
            return
        config = self.geometry_config()
        for name, panel in self.geo_panels.items():
            panel.set_message("training..." if name in config.losses else "not selected")
        self.train_button.setEnabled(False)
        self.model.train_geometry(config)

    def _geometry_finished(self) -> None:
        self.train_button.setEnabled(True)

    def _geometry_failed(self, error: BaseException) -> None:
        for panel in self.geo_panels.values():
            panel.set_message("")
        self.geo_info.setText(str(error))

    def _geometry_done(self, result: Any) -> None:
        for name, panel in self.geo_panels.items():
            run = result.runs.get(name)
            if run is None:
                panel.set_message("not selected")
            else:
                panel.show_run(run, self.yaw.value(), self.pitch.value())
        self._describe_geometry()
        self._dim_changed()

    def _describe_geometry(self) -> None:
        result, theme = self.geometry, themes.current_theme()
        if result is None:
            return
        names = ", ".join(f'<span style="color:{theme.series_color(k)}"><b>{html.escape(name)}</b></span>'
                          for k, name in enumerate(result.identities))
        self.geo_info.setText(f"{html.escape(result.source)}.<br>Identities: {names}.<br>Spread: mean angle of a "
                              "feature to its class direction; gap: smallest angle between two class directions.")

    def _dim_changed(self) -> None:
        sphere = self.model.sphere
        for slider in (self.yaw, self.pitch):
            slider.setEnabled(sphere)

    def _rotate(self) -> None:
        for panel in self.geo_panels.values():
            panel.set_view(self.yaw.value(), self.pitch.value())

    # ================================================================ page hooks
    def _gallery_changed(self) -> None:
        self.model.gallery_changed()
        if self.isVisible():
            self.refresh()

    def _theme_changed(self, _theme: Any) -> None:
        row, pos = self.hovered_row, self._hover_pos
        self._draw_projection()
        self._describe_geometry()
        if row is not None:
            self.show_hover(row, pos)

    def activated(self) -> None:
        if self.stale:
            self.refresh()

    def shutdown(self) -> None:
        self.job.shutdown()
        self.geo_job.shutdown()
