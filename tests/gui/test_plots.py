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
