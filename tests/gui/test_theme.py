"""Theme switching: stylesheet, palette, notifications, unknown names."""

from __future__ import annotations

import pytest

from faceapp.gui import theme as themes


def test_apply_theme_switches_and_notifies(qapp, qtbot):
    seen = []
    themes.notifier().changed.connect(seen.append)
    try:
        themes.apply_theme(qapp, "light")
        assert themes.current_theme() is themes.LIGHT and seen[-1] is themes.LIGHT
        assert themes.LIGHT.background.lower() in qapp.styleSheet().lower()
        # FaceApp's additions (resources/style.qss) follow qdarkstyle's, in the theme's colours
        assert f'QLabel[role="verdict-match"] {{ color: white; background: {themes.LIGHT.good};' in qapp.styleSheet()
        assert "${" not in qapp.styleSheet()
        assert qapp.palette().window().color().name().upper() == themes.LIGHT.background.upper()
        themes.apply_theme(qapp, "dark")
        assert themes.current_theme() is themes.DARK and seen[-1] is themes.DARK
    finally:
        themes.notifier().changed.disconnect(seen.append)
        themes.apply_theme(qapp, "dark")


def test_unknown_theme_names_the_choices():
    with pytest.raises(ValueError, match="dark, light"):
        themes.theme_by_name("sepia")


def test_series_colours_cycle():
    assert themes.DARK.series_color(0) == themes.DARK.series_color(len(themes.DARK.series))
