"""Plot panel: PNG/SVG export of real files, theme re-colouring, bad suffix errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from faceapp.core.errors import InputFileError
from faceapp.gui import theme as themes
from faceapp.gui.plots import PlotPanel


@pytest.fixture
def panel(qtbot, qapp):
    themes.apply_theme(qapp, "dark")
    widget = PlotPanel("ROC", x_label="FAR", y_label="TAR")
    widget.resize(480, 320)
    qtbot.addWidget(widget)
    widget.show()
    x = np.linspace(0, 1, 50)
    widget.line(x, np.sqrt(x), name="model A")
    widget.line(x, x, name="chance", dashed=True)
    widget.vline(0.3, label="threshold")
    qapp.processEvents()
    yield widget
    themes.apply_theme(qapp, "dark")


def test_png_export_is_a_real_image_with_the_theme_background(panel, tmp_path):
    path = panel.export(tmp_path / "roc.png")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 200
    corner = image[2, 2].astype(int)[::-1]  # BGR -> RGB
    expected = np.array([int(themes.DARK.background[i:i + 2], 16) for i in (1, 3, 5)])
    assert np.abs(corner - expected).max() <= 8
    # the accent-coloured series was drawn somewhere
    accent = np.array([int(themes.DARK.series[0][i:i + 2], 16) for i in (1, 3, 5)])[::-1]
    assert (np.abs(image.astype(int) - accent).max(axis=2) < 30).sum() > 20


def test_svg_export_is_valid_xml_with_paths(panel, tmp_path):
    path = panel.export(tmp_path / "sub" / "roc.svg")
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert len([e for e in root.iter() if e.tag.endswith("path") or e.tag.endswith("polyline")]) >= 3


def test_bad_export_suffix_is_a_clear_error(panel, tmp_path):
    with pytest.raises(InputFileError, match="roc.jpg"):
        panel.export(tmp_path / "roc.jpg")


def test_theme_switch_recolours_series_and_background(panel, qapp):
    first = panel.series[0]
    assert first.opts["pen"].color().name().upper() == themes.DARK.series[0].upper()
    themes.apply_theme(qapp, "light")
    assert first.opts["pen"].color().name().upper() == themes.LIGHT.series[0].upper()
    assert panel.widget.backgroundBrush().color().name().upper() == themes.LIGHT.background.upper()
    panel.clear()
    assert panel.series == []


def test_no_axis_rescales_its_numbers_with_an_si_prefix(qtbot, qapp) -> None:
    """A learning rate of 0.025-0.05 reads as 0.025-0.05, not "lr (x0.001)" running 25-50."""
    widget = PlotPanel("Learning rate", x_label="step", y_label="lr", legend=False)
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.show()
    steps = np.arange(0, 3000, 10)
    widget.line(steps / 3000 * 0.004, 0.025 + 0.025 * np.cos(steps / 3000 * np.pi) ** 2)
    qapp.processEvents()
    for name in ("left", "bottom"):
        axis = widget.plot_item.getAxis(name)
        assert axis.autoSIPrefixScale == 1.0
        assert "x0.001" not in axis.labelString() and "(x" not in axis.labelString()


def test_an_outside_legend_hides_no_point(qtbot, qapp) -> None:
    widget = PlotPanel("Gallery embeddings", legend="outside")
    qtbot.addWidget(widget)
    widget.resize(600, 400)
    widget.show()
    for k in range(8):
        widget.scatter([k / 8, k / 8 + 0.05], [1.0, 0.9], name=f"Person {k} with a longer name")
    widget.plot_item.autoRange()
    qapp.processEvents()
    legend = widget.legend.sceneBoundingRect()
    view = widget.plot_item.vb.sceneBoundingRect()
    assert len(widget.legend.items) == 8 and legend.width() > 0
    assert not legend.intersects(view), "the legend lies over the data"


def test_a_narrow_panel_elides_its_title_instead_of_covering_export(qtbot, qapp) -> None:
    widget = PlotPanel("Score distributions of the genuine and impostor pairs")
    qtbot.addWidget(widget)
    widget.resize(190, 220)
    widget.show()
    qapp.processEvents()
    title, button = widget.title_label.geometry(), widget.export_button.geometry()
    assert not title.intersects(button)
    assert button.right() <= widget.width() and button.width() >= widget.export_button.sizeHint().width()
    assert widget.title_label.is_elided() and "genuine" in widget.title_label.toolTip()


@pytest.mark.parametrize("key", ["trainer", "thresholds", "embeddings"])
def test_every_plot_of_a_page_fits_a_1024_px_window(open_window, db_copy, qtbot, qapp, key) -> None:
    """At 1024 x 640 each plot panel lies inside the window with its Export button whole and apart from the title."""
    window = open_window("--db", str(db_copy), "--page", key)
    window.resize(1024, 640)
    page = window.page(key)
    if key == "embeddings":
        page.tabs.setCurrentIndex(0)
    qtbot.wait(100)
    panels = [p for p in page.findChildren(PlotPanel) if p.isVisible()]
    assert panels
    right_edge = window.centralWidget().width()
    for panel in panels:
        left = panel.mapTo(window.centralWidget(), panel.rect().topLeft()).x()
        assert left + panel.width() <= right_edge + 1, f"{panel.title_label.text()} is cut off at 1024 px"
        title, button = panel.title_label.geometry(), panel.export_button.geometry()
        assert not title.intersects(button), f"{panel.title_label.text()}: the title covers Export"
        assert button.width() >= panel.export_button.sizeHint().width()
