"""Every interactive widget of the pages has a tooltip (buttons, combo boxes, spin boxes, line edits, sliders,
check boxes), on every step and tab, shown or not. The walker (tests/gui/tooltips.py) takes any root widget:
add a page key to PAGES, or pass the main window, to cover more."""

from __future__ import annotations

from tests.gui.tooltips import untipped

PAGES = ("live", "enroll", "identities", "trainer", "thresholds", "embeddings")
SKIP: tuple[type, ...] = ()


def test_every_interactive_widget_of_the_pages_has_a_tooltip(open_window, db_copy) -> None:
    window = open_window("--db", str(db_copy), wait=False)
    missing = {key: untipped(window.page(key), SKIP) for key in PAGES}
    missing["window"] = untipped(window.menuBar(), SKIP)
    missing = {key: widgets for key, widgets in missing.items() if widgets}
    assert not missing, "widgets without a tooltip:\n" + "\n".join(
        f"  {key}: {widget}" for key, widgets in missing.items() for widget in widgets)
