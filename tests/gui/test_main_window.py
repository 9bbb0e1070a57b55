"""The shell: page registry, add_page, shortcuts, status bar, banners, remembered state."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from faceapp import __version__
from faceapp.gui.app import build_parser, create_window
from faceapp.gui.pages import Page, registered_pages
from faceapp.gui.resources import default_settings
from faceapp.gui.settings import app_settings, read_setting


def _window(qtbot, *args: str):  # noqa: ANN202
    window = create_window(build_parser().parse_args(list(args)), load=False)
    qtbot.addWidget(window)
    window.show()
    return window


def test_the_six_pages_exist_in_side_bar_order(qtbot):
    window = _window(qtbot)
    keys = window.page_keys()
    assert keys == ["live", "enroll", "identities", "trainer", "thresholds", "embeddings"]
    orders = {spec.key: spec.order for spec in registered_pages()}
    assert [orders[k] for k in keys] == sorted(orders[k] for k in keys)
    window.shutdown()


def test_the_analyst_pages_are_built_when_first_shown(qtbot):
    window = _window(qtbot, "--page", "live")
    assert [k for k in window.page_keys() if not window.is_built(k)] == ["trainer", "thresholds", "embeddings"]
    window.sidebar.setCurrentRow(window.page_keys().index("thresholds"))      # a click in the side bar
    page = window.current_page
    assert window.is_built("thresholds") and type(page).__name__ == "ThresholdsPage"
    assert window.stack.currentWidget() is page and window.page("thresholds") is page
    assert window.page("embeddings").key == "embeddings" and window.is_built("embeddings")   # asked for: built
    assert not window.is_built("trainer")
    window.shutdown()


def test_add_page_show_page_and_ctrl_number_shortcuts(qtbot):
    window = _window(qtbot)

    class Extra(Page):
        def __init__(self, ctx):  # noqa: ANN001
            super().__init__(ctx)
            self.shown = 0
            QLabel("extra", self)

        def activated(self) -> None:
            self.shown += 1

    extra = window.add_page(Extra(window.ctx), "extra", "Extra", position=0)
    assert window.page_keys()[0] == "extra"
    window.show_page("thresholds")
    assert window.current_page.key == "thresholds"
    window.show_page("extra")
    assert window.current_page is extra and extra.shown == 1
    with qtbot.waitActive(window):
        window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page.key == window.page_keys()[1]
    try:
        window.add_page(Extra(window.ctx), "extra", "Again")
    except ValueError as error:
        assert "extra" in str(error)
    else:
        raise AssertionError("a duplicate page key must be refused")
    try:
        window.show_page("nope")
    except KeyError as error:
        assert "nope" in str(error)
    window.shutdown()


def test_status_bar_and_banners(qtbot):
    window = _window(qtbot)
    window.set_status("fps", "FPS: 12.5")
    assert window.status_text("fps") == "FPS: 12.5"
    assert window.status_text("database").startswith("DB:")
    window.ctx.notify("hello", "warning")
    assert window.banners.messages("warning") == ["hello"]
    window.ctx.report_error(OSError("disk full"), "Saving")
    assert any("Saving: disk full" in m for m in window.banners.messages("error"))
    window.shutdown()


def test_theme_and_page_are_remembered(qtbot):
    window = _window(qtbot, "--theme", "light")
    window.show_page("embeddings")
    window.set_theme("light")
    window.close()
    assert app_settings().value("window/page") == "embeddings"
    assert app_settings().value("theme") == "light"
    again = _window(qtbot)
    assert again.current_page.key == "embeddings"
    again.set_theme("dark")
    again.close()


def test_unknown_start_page_is_a_warning_not_a_crash(qtbot):
    window = _window(qtbot, "--page", "nowhere")
    assert any("nowhere" in m for m in window.banners.messages("warning"))
    window.shutdown()


def test_icon_about_text_and_default_settings_come_from_resources(qtbot):
    window = _window(qtbot)
    sizes = {(s.width(), s.height()) for s in window.windowIcon().availableSizes()}
    assert {(16, 16), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)} <= sizes
    about = window.about_text()
    assert about.startswith(f"## FaceApp {__version__}") and "${" not in about
    for licence in ("MIT", "Apache-2.0", "research use only", "MS-Celeb-1M"):
        assert licence in about
    window.shutdown()
    shipped = default_settings()
    assert shipped["theme"] == "dark" and not any(key.startswith("_") for key in shipped)
    assert read_setting("live/mode", "verify", str) == shipped["live/mode"]     # gui.ini lacks it: shipped default
    assert read_setting("not/shipped", "own default", str) == "own default"
