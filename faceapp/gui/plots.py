"""A pyqtgraph plot with theme colours and PNG/SVG export, for every chart in the GUI.

    panel = PlotPanel("Loss", x_label="step", y_label="loss")
    curve = panel.line([0, 1, 2], [3.0, 2.1, 1.7], name="train")      # colour from the theme's series
    curve.setData(xs, ys)                                              # update live
    panel.export("loss.png")                                           # or .svg; the Export button asks

Colours follow ``faceapp.gui.theme``: switching theme re-colours background, axes, text and series.
Axes never rescale their numbers with an SI prefix (pyqtgraph's default turns a learning rate of 0.025-0.05
into "lr (x0.001)" running 25-50). ``legend="outside"`` puts the legend in a column beside the plot, where it
hides no point (scatter plots); ``set_note`` writes a sentence under the plot (why it is empty, what a
marker at the edge means). The title elides rather than pushing the Export button out of a narrow panel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QFileDialog, QHBoxLayout, QLabel, QMenu, QSizePolicy, QToolButton, QVBoxLayout, QWidget,
)

from faceapp.core.errors import InputFileError
from faceapp.gui import theme as themes

EXPORT_FORMATS = {".png": "PNG image", ".svg": "SVG vector image"}

pg.setConfigOptions(antialias=True)


def _export_svg(plot_item: Any, path: Path) -> None:
    """Render the plot's scene region into an SVG with Qt's generator.

    pyqtgraph's own SVGExporter cannot parse the path syntax Qt 6.12 writes (pyqtgraph issue #3485).
    """
    from PySide6.QtCore import QRectF, QSize
    from PySide6.QtGui import QColor, QPainter
    from PySide6.QtSvg import QSvgGenerator

    rect = plot_item.sceneBoundingRect()
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(QSize(int(rect.width()), int(rect.height())))
    generator.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
    title = getattr(plot_item, "titleLabel", None)
    generator.setTitle((title.text if title is not None else "") or "FaceApp plot")
    painter = QPainter(generator)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(QRectF(0, 0, rect.width(), rect.height()), QColor(themes.current_theme().background))
        plot_item.scene().render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
    finally:
        painter.end()


def export_plot(plot_item: Any, path: str | Path, width: int | None = None) -> Path:
    """Write ``plot_item`` (a PlotItem, or a GraphicsLayout holding plot and legend) to ``path`` as PNG or
    SVG (by suffix); InputFileError for other suffixes."""
    from pyqtgraph import exporters

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise InputFileError(f"{path}: cannot export a plot as {suffix or 'a file without suffix'}; "
                             f"use {' or '.join(EXPORT_FORMATS)}", path=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        exporter = exporters.ImageExporter(plot_item)
        if width:
            exporter.parameters()["width"] = int(width)
        exporter.export(str(path))
    else:
        _export_svg(plot_item, path)
    if not path.is_file():
        raise InputFileError(f"{path}: the plot could not be written", path=str(path))
    return path


AXES = ("left", "bottom", "right", "top")


def plain_axes(plot_item: pg.PlotItem) -> None:
    """Axis numbers as they are: no automatic SI prefix ("x0.001") on any axis of ``plot_item``."""
    for name in AXES:
        plot_item.getAxis(name).enableAutoSIPrefix(False)


class ElidedLabel(QLabel):
    """A one-line label that elides its text ("Score distr...") instead of demanding its full width;
    the full text is its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setToolTip(text)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(24)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self):  # noqa: ANN201, N802 - Qt API
        hint = super().minimumSizeHint()
        hint.setWidth(24)
        return hint

    def paintEvent(self, _event) -> None:  # noqa: ANN001, N802 - Qt API
        painter = QPainter(self)
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.contentsRect().width())
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(self.contentsRect(), int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), shown)

    def is_elided(self) -> bool:
        return self.fontMetrics().horizontalAdvance(self.text()) > self.contentsRect().width()


class PlotPanel(QWidget):
    """A titled pyqtgraph plot with an Export button (PNG/SVG) and theme-aware colours.

    ``legend``: True (inside the plot, top right), "outside" (a column right of the plot) or False.
    """

    def __init__(self, title: str = "", *, x_label: str = "", y_label: str = "", legend: bool | str = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._series: list[tuple[pg.PlotDataItem, int, dict[str, Any]]] = []
        self._lines: list[tuple[pg.InfiniteLine, str]] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        self.title_label = ElidedLabel(title)
        self.title_label.setProperty("role", "heading")
        header.addWidget(self.title_label, 1)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setToolTip("Save this plot as a PNG or SVG file")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        menu.addAction("PNG image...", self._ask_export_png)
        menu.addAction("SVG image...", self._ask_export_svg)
        self.export_button.setMenu(menu)
        header.addWidget(self.export_button)
        layout.addLayout(header)
        if legend == "outside":
            self.widget = pg.GraphicsLayoutWidget()
            self.plot_item: pg.PlotItem = self.widget.addPlot(row=0, col=0)
        else:
            self.widget = pg.PlotWidget()
            self.plot_item = self.widget.getPlotItem()
        self.plot_item.showGrid(x=True, y=True, alpha=0.25)
        plain_axes(self.plot_item)
        if x_label:
            self.plot_item.setLabel("bottom", x_label)
        if y_label:
            self.plot_item.setLabel("left", y_label)
        self.legend: pg.LegendItem | None = None
        if legend == "outside":
            self.legend = pg.LegendItem()
            self.legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)   # rows stay together
            self.widget.ci.addItem(self.legend, row=0, col=1)
            self.widget.ci.layout.setColumnStretchFactor(0, 1)
            self.plot_item.legend = self.legend           # named items join it, as with addLegend
        elif legend:
            self.legend = self.plot_item.addLegend(offset=(-10, 10))
        layout.addWidget(self.widget, 1)
        self.note_label = QLabel("")
        self.note_label.setObjectName("plot_note")
        self.note_label.setProperty("role", "muted")
        self.note_label.setWordWrap(True)
        self.note_label.hide()
        layout.addWidget(self.note_label)
        self.apply_theme(themes.current_theme())
        themes.notifier().changed.connect(self.apply_theme)

    # -- content ---------------------------------------------------------------------------------
    def line(self, x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, *, name: str | None = None,
             width: float = 2.0, dashed: bool = False, symbol: str | None = None, color: int | str | None = None,
             step: bool = False, fill: bool = False) -> pg.PlotDataItem:
        """Add a line in the next theme series colour and return it (update it with ``setData``).

        ``color``: a series index (same colour as that series) or a theme field name ("grid", "text_muted",
        "good", ...) instead of the next series colour. ``step``: a histogram (``len(x) == len(y) + 1``,
        bin edges). ``fill``: shade the area down to zero in a translucent version of the colour.
        """
        index = len(self._series)
        style = {"width": width, "dashed": dashed, "symbol": symbol, "color": color, "fill": fill}
        options: dict[str, Any] = {"stepMode": "center"} if step else {}
        if fill:
            options["fillLevel"] = 0.0
        item = self.plot_item.plot(np.asarray(x, dtype=float), np.asarray(y, dtype=float), name=name, **options)
        self._series.append((item, index, style))
        self._style_series(item, index, style, themes.current_theme())
        return item

    def scatter(self, x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, *, name: str | None = None,
                size: float = 6.0, color: int | str | None = None, symbol: str = "o") -> pg.PlotDataItem:
        """Add points (no line) in the next series colour (or ``color``, as for ``line``)."""
        index = len(self._series)
        style = {"width": 0.0, "dashed": False, "symbol": symbol, "size": size, "color": color}
        item = self.plot_item.plot(np.asarray(x, dtype=float), np.asarray(y, dtype=float), name=name, pen=None)
        self._series.append((item, index, style))
        self._style_series(item, index, style, themes.current_theme())
        return item

    def vline(self, x: float, *, color: str = "warn", label: str | None = None, movable: bool = False) -> pg.InfiniteLine:
        """A vertical marker (e.g. a threshold) coloured by a theme field name."""
        line = pg.InfiniteLine(pos=x, angle=90, movable=movable, label=label,
                               labelOpts={"position": 0.9, "color": getattr(themes.current_theme(), color)})
        self.plot_item.addItem(line)
        self._lines.append((line, color))
        self._style_line(line, color, themes.current_theme())
        return line

    def set_note(self, text: str) -> None:
        """A sentence under the plot (why it is empty, what a clamped marker means); "" hides it."""
        self.note_label.setText(text)
        self.note_label.setVisible(bool(text))

    @property
    def note(self) -> str:
        return self.note_label.text() if self.note_label.isVisibleTo(self) else ""

    def clear(self) -> None:
        """Remove every series and marker."""
        self.plot_item.clear()
        if self.legend is not None:
            self.legend.clear()
        self._series.clear()
        self._lines.clear()

    @property
    def series(self) -> list[pg.PlotDataItem]:
        return [item for item, _, _ in self._series]

    # -- export ---------------------------------------------------------------------------------
    def export(self, path: str | Path, width: int | None = None) -> Path:
        """Write the plot to ``path`` (.png or .svg)."""
        outside = isinstance(self.widget, pg.GraphicsLayoutWidget)
        return export_plot(self.widget.ci if outside else self.plot_item, path, width)

    def _ask_export_png(self) -> None:
        self._ask_export(".png")

    def _ask_export_svg(self) -> None:
        self._ask_export(".svg")

    def _ask_export(self, suffix: str) -> None:
        name = self.title_label.text().strip().lower().replace(" ", "_") or "plot"
        path, _ = QFileDialog.getSaveFileName(self, "Export plot", f"{name}{suffix}",
                                              f"{EXPORT_FORMATS[suffix]} (*{suffix})")
        if path:
            if not path.lower().endswith(suffix):
                path += suffix
            try:
                self.export(path)
            except Exception as error:  # noqa: BLE001 - shown to the user
                from faceapp.gui.errors import error_dialog

                error_dialog(self, error, "Exporting the plot")

    # -- theme ----------------------------------------------------------------------------------
    def apply_theme(self, theme: themes.Theme) -> None:
        """Re-colour background, axes, labels and every series for ``theme``."""
        self.widget.setBackground(theme.background)
        for axis_name in ("left", "bottom", "right", "top"):
            axis = self.plot_item.getAxis(axis_name)
            axis.setPen(pg.mkPen(theme.grid))
            axis.setTextPen(pg.mkPen(theme.text))
            axis.label.setDefaultTextColor(pg.mkColor(theme.text))
        title = self.plot_item.titleLabel
        title.setAttr("color", theme.text)
        title.setText(title.text)                      # setAttr alone does not re-render existing text
        if self.legend is not None:
            self.legend.setLabelTextColor(theme.text)
            for _sample, label in self.legend.items:   # nor for the labels already in the legend
                label.setText(label.text)
            self.legend.setBrush(pg.mkBrush(theme.surface + "C0"))
        for item, index, style in self._series:
            self._style_series(item, index, style, theme)
        for line, color in self._lines:
            self._style_line(line, color, theme)

    @staticmethod
    def _style_series(item: pg.PlotDataItem, index: int, style: dict[str, Any], theme: themes.Theme) -> None:
        chosen = style.get("color")
        color = getattr(theme, chosen) if isinstance(chosen, str) else theme.series_color(
            index if chosen is None else chosen)
        if style.get("fill"):
            shade = pg.mkColor(color)
            shade.setAlpha(60)
            item.setBrush(pg.mkBrush(shade))
        if style["width"] > 0:
            pen = pg.mkPen(color, width=style["width"])
            if style["dashed"]:
                from PySide6.QtCore import Qt

                pen.setStyle(Qt.PenStyle.DashLine)
            item.setPen(pen)
        if style.get("symbol"):
            item.setSymbol(style["symbol"])
            item.setSymbolBrush(pg.mkBrush(color))
            item.setSymbolPen(pg.mkPen(color))
            item.setSymbolSize(style.get("size", 6.0))

    @staticmethod
    def _style_line(line: pg.InfiniteLine, color: str, theme: themes.Theme) -> None:
        line.setPen(pg.mkPen(getattr(theme, color), width=2))
        label = getattr(line, "label", None)        # pyqtgraph creates it only when a label text is given
        if label is not None:
            label.setColor(getattr(theme, color))
