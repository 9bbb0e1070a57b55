"""Drawing learned features on the unit circle or sphere (the loss-geometry view), with pyqtgraph 2-D.

2-D: the raw features, scaled into the disc (faint: their radial spread is part of what a loss does),
and their projections on the unit circle (solid), plus each class's weight direction as a line from the
centre. 3-D: pyqtgraph's OpenGL views need PyOpenGL and a GL context (neither is available offscreen or on
many remote desktops), so the sphere is drawn as a rotatable orthographic projection: points on the
visible hemisphere solid, those behind it small and faint, the outline, the equator and one meridian as
guides. ``yaw``/``pitch`` (degrees) rotate the view.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from faceapp.gui import theme as themes
from faceapp.gui.plots import PlotPanel

WEIGHT_LENGTH = 1.22
RAW_RADIUS = 0.82
VIEW_RADIUS = 1.3


def rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """3x3 rotation: yaw about the vertical (y) axis, then pitch about the horizontal (x) axis."""
    a, b = np.radians(yaw_deg), np.radians(pitch_deg)
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rx @ ry


def unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero)."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows, dtype=np.float64), where=norms > 0)


def project_sphere(points: np.ndarray, yaw_deg: float, pitch_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) screen coordinates and (N,) depth (> 0 faces the viewer) of 3-D points after rotation."""
    rotated = np.asarray(points, dtype=np.float64) @ rotation(yaw_deg, pitch_deg).T
    return rotated[:, :2], rotated[:, 2]


class GeometryPanel(PlotPanel):
    """One loss's features on the circle (2-D) or the sphere (3-D); ``show_run`` draws a GeometryRun."""

    def __init__(self, title: str = "", parent: Any = None) -> None:
        super().__init__(title, legend=False, parent=parent)
        item = self.plot_item
        item.setAspectLocked(True)
        item.showGrid(x=False, y=False)
        item.hideAxis("left")
        item.hideAxis("bottom")
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        self.run: Any = None
        self.yaw, self.pitch = 30.0, 20.0
        self.caption = ""
        self.set_message("not trained yet")

    def set_message(self, text: str) -> None:
        """Clear the panel and show ``text`` in it."""
        self.run = None
        self.caption = text
        self._redraw()

    def show_run(self, run: Any, yaw: float | None = None, pitch: float | None = None) -> None:
        """Draw ``run`` (a ``faceapp.services.geometry.GeometryRun``)."""
        self.run = run
        if yaw is not None:
            self.yaw = yaw
        if pitch is not None:
            self.pitch = pitch
        self.caption = (f"acc {run.accuracy * 100:.0f}%  \u00b7  spread {run.intra_deg:.1f}\u00b0  \u00b7  "
                        f"gap {run.inter_deg:.1f}\u00b0")
        self._redraw()

    def set_view(self, yaw: float, pitch: float) -> None:
        """Rotate the sphere (3-D runs only)."""
        self.yaw, self.pitch = yaw, pitch
        if self.run is not None and self.run.features.shape[1] == 3:
            self._redraw()

    def apply_theme(self, theme: themes.Theme) -> None:
        super().apply_theme(theme)
        if hasattr(self, "run"):
            self._redraw()

    # -- drawing --------------------------------------------------------------------------------
    def _redraw(self) -> None:
        theme = themes.current_theme()
        item = self.plot_item
        item.clear()
        item.setTitle(self.caption, color=theme.text_muted, size="9pt")
        guide = pg.mkPen(theme.grid, width=1, style=Qt.PenStyle.DashLine)
        t = np.linspace(0, 2 * np.pi, 181)
        item.plot(np.cos(t), np.sin(t), pen=pg.mkPen(theme.grid, width=1.5))
        run = self.run
        if run is not None and run.features.shape[1] == 3:
            self._draw_sphere(run, theme, guide, t)
        elif run is not None:
            self._draw_circle(run, theme)
        corners = pg.ScatterPlotItem([-VIEW_RADIUS, VIEW_RADIUS], [-VIEW_RADIUS, VIEW_RADIUS], size=0, pen=None,
                                     brush=None)
        item.addItem(corners)                       # a fixed square the view fits, whatever the panel's shape
        item.enableAutoRange()
        item.autoRange(padding=0)

    def _class_pen(self, theme: themes.Theme, k: int, width: float = 2.5) -> Any:
        return pg.mkPen(theme.series_color(k), width=width)

    def _brushes(self, theme: themes.Theme, labels: np.ndarray, alpha: int) -> list[Any]:
        cache = {}
        for k in np.unique(labels):
            color = pg.mkColor(theme.series_color(int(k)))
            color.setAlpha(alpha)
            cache[int(k)] = pg.mkBrush(color)
        return [cache[int(k)] for k in labels]

    def _draw_circle(self, run: Any, theme: themes.Theme) -> None:
        item = self.plot_item
        feats = np.asarray(run.features, dtype=np.float64)
        norms = np.linalg.norm(feats, axis=1)
        scale = RAW_RADIUS / max(1e-9, float(np.percentile(norms, 98)))
        raw = np.clip(feats * scale, -RAW_RADIUS * 1.2, RAW_RADIUS * 1.2)
        item.addItem(pg.ScatterPlotItem(raw[:, 0], raw[:, 1], size=5, pen=None,
                                        brush=self._brushes(theme, run.labels, 80)))
        on_circle = unit(feats)
        item.addItem(pg.ScatterPlotItem(on_circle[:, 0], on_circle[:, 1], size=8, pen=pg.mkPen(theme.background),
                                        brush=self._brushes(theme, run.labels, 255)))
        if run.weights is not None:
            for k, w in enumerate(unit(run.weights) * WEIGHT_LENGTH):
                item.plot([0, w[0]], [0, w[1]], pen=self._class_pen(theme, k))

    def _draw_sphere(self, run: Any, theme: themes.Theme, guide: Any, t: np.ndarray) -> None:
        item = self.plot_item
        ring = np.stack([np.cos(t), np.zeros_like(t), np.sin(t)], axis=1)            # equator (y = 0)
        meridian = np.stack([np.zeros_like(t), np.cos(t), np.sin(t)], axis=1)         # x = 0
        for curve in (ring, meridian):
            xy, depth = project_sphere(curve, self.yaw, self.pitch)
            front = np.where(depth >= 0, xy[:, 1], np.nan)                            # hidden half not drawn
            item.plot(xy[:, 0], front, pen=guide, connect="finite")
        xy, depth = project_sphere(unit(run.features), self.yaw, self.pitch)
        back = depth < 0
        if back.any():
            item.addItem(pg.ScatterPlotItem(xy[back, 0], xy[back, 1], size=5, pen=None,
                                            brush=self._brushes(theme, run.labels[back], 60)))
        if run.weights is not None:
            w_xy, w_depth = project_sphere(unit(run.weights) * WEIGHT_LENGTH, self.yaw, self.pitch)
            for k in range(w_xy.shape[0]):
                pen = self._class_pen(theme, k, 2.5 if w_depth[k] >= 0 else 1.2)
                if w_depth[k] < 0:
                    pen.setStyle(Qt.PenStyle.DotLine)
                item.plot([0, w_xy[k, 0]], [0, w_xy[k, 1]], pen=pen)
        front = ~back
        if front.any():
            item.addItem(pg.ScatterPlotItem(xy[front, 0], xy[front, 1], size=8, pen=pg.mkPen(theme.background),
                                            brush=self._brushes(theme, run.labels[front], 255)))
