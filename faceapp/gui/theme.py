"""Dark (default) and light themes: the qdarkstyle stylesheet plus FaceApp's additions
(``resources/style.qss``), and the colours plots and overlays use.

Widgets that paint themselves (plots, the video overlay, verdict labels) ask ``current_theme()`` for
their colours and listen to ``ThemeNotifier.changed`` to repaint when the user switches theme.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("dark", "light")


@dataclass(frozen=True)
class Theme:
    """Colours of one theme (hex strings), shared by stylesheets, plots and overlays."""

    name: str
    background: str
    surface: str
    text: str
    text_muted: str
    accent: str
    grid: str
    good: str = "#2EA043"        # MATCH, accepted frame
    bad: str = "#D73A49"         # NO MATCH, rejected frame
    warn: str = "#D29922"        # untrained model, fallback detector
    unknown: str = "#8B949E"     # "Unknown" identity
    series: tuple[str, ...] = field(default_factory=tuple)   # plot line colours, in order

    def series_color(self, index: int) -> str:
        """The colour of the ``index``-th plotted series (cycles)."""
        return self.series[index % len(self.series)]

    def qcolor(self, name: str, alpha: int = 255) -> QColor:
        """A QColor for a named field (``"good"``, ``"accent"``...) with optional alpha."""
        color = QColor(getattr(self, name))
        color.setAlpha(alpha)
        return color


DARK = Theme(
    name="dark", background="#19232D", surface="#293544", text="#DFE1E2", text_muted="#9DA9B5",
    accent="#37AEFE", grid="#455364",
    series=("#37AEFE", "#F0883E", "#56D364", "#DB61A2", "#E3B341", "#A371F7", "#79C0FF", "#FF7B72"),
)
LIGHT = Theme(
    name="light", background="#FAFAFA", surface="#DFE1E2", text="#19232D", text_muted="#54687A",
    accent="#1A72BB", grid="#C0C4C8", good="#1A7F37", bad="#CF222E", warn="#9A6700", unknown="#57606A",
    series=("#1A72BB", "#BC4C00", "#1A7F37", "#BF3989", "#9A6700", "#8250DF", "#0969DA", "#CF222E"),
)
_BY_NAME = {"dark": DARK, "light": LIGHT}


class ThemeNotifier(QObject):
    """Emits ``changed(Theme)`` after ``apply_theme`` switches the application's theme."""

    changed = Signal(object)


_current: Theme = DARK
_notifier: ThemeNotifier | None = None


def notifier() -> ThemeNotifier:
    """The process-wide notifier (created on first use, on the GUI thread)."""
    global _notifier
    if _notifier is None:
        _notifier = ThemeNotifier()
    return _notifier


def current_theme() -> Theme:
    """The theme applied last (dark until ``apply_theme`` is called)."""
    return _current


def theme_by_name(name: str) -> Theme:
    """``"dark"`` or ``"light"``; ValueError naming the choices otherwise."""
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise ValueError(f"unknown theme {name!r}; choose one of: {', '.join(THEMES)}") from None


def _stylesheet(theme: Theme) -> str:
    """qdarkstyle's stylesheet for the theme plus FaceApp's additions (``resources/style.qss``: the look of
    the roles the rest of the GUI sets through ``setProperty("role", ...)``), in the theme's colours."""
    import qdarkstyle

    from faceapp.gui.resources import style_additions

    palette = qdarkstyle.DarkPalette if theme.name == "dark" else qdarkstyle.LightPalette
    colours = {name: value for name, value in vars(theme).items() if isinstance(value, str)}
    return qdarkstyle.load_stylesheet(qt_api="pyside6", palette=palette) + "\n" + style_additions(colours)


def apply_theme(app: QApplication, name: str) -> Theme:
    """Switch ``app`` to the named theme (stylesheet + palette) and notify listeners."""
    global _current
    theme = theme_by_name(name)
    app.setStyleSheet(_stylesheet(theme))
    palette = app.palette()
    palette.setColor(QPalette.ColorRole.Window, QColor(theme.background))
    palette.setColor(QPalette.ColorRole.WindowText, QColor(theme.text))
    palette.setColor(QPalette.ColorRole.Base, QColor(theme.background))
    palette.setColor(QPalette.ColorRole.Text, QColor(theme.text))
    app.setPalette(palette)
    _current = theme
    notifier().changed.emit(theme)
    return theme


def repolish(widget) -> None:  # noqa: ANN001 - any QWidget
    """Re-apply the stylesheet after a dynamic ``role`` property changed."""
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    widget.update()
