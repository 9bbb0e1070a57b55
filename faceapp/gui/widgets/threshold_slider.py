"""The one threshold slider of the GUI (Live and Thresholds pages): a slider bound to a spin box that keeps
the exact value it was given.

Spin boxes round to their decimals; a threshold calibrated into a model card (verify 0.5016) or computed at
a target FAR (just above an impostor score, ``np.nextafter``) must be used exactly, or decisions and
read-outs would differ from ``faceapp verify`` / ``faceapp eval``, and saving would write the rounded value
back. So the control keeps the float it was set to and only displays it rounded (the tooltip shows it in
full); moving the slider or typing in the box replaces it.

Under the slider, ``set_operating_point`` shows what the value costs (FAR / FPIR from the model's
calibration, ``faceapp.services.operating_point``; "uncalibrated" in the warning colour) and the tooltip
says what moving it trades. The owner of the control computes the read-out; the widget only shows it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QSlider, QVBoxLayout, QWidget

from faceapp.gui.theme import repolish
from faceapp.gui.widgets.elided_label import ElidedLabel


class ThresholdSlider(QWidget):
    """A cosine threshold in [low, high]: slider (``steps`` positions) + spin box; ``value()`` is exact."""

    value_changed = Signal(float)

    def __init__(self, low: float = -1.0, high: float = 1.0, *, steps: int = 20000, decimals: int = 4,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.low, self.high, self.steps = float(low), float(high), int(steps)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(1)
        layout = QHBoxLayout()
        layout.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(layout)
        # one line, hidden until the owner sets a read-out: shrunk (then elided) rather than wrapped, so a
        # narrow panel keeps its height (the full text and what it means are in the tooltip)
        self.operating_point = ElidedLabel("", min_point_size=7, elide=Qt.TextElideMode.ElideRight)
        self.operating_point.setObjectName("operating_point")
        self.operating_point.hide()
        outer.addWidget(self.operating_point)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, self.steps)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(self.low, self.high)
        self.spin.setDecimals(decimals)
        self.spin.setSingleStep(10 ** -(decimals - 1))
        self.spin.setMinimumWidth(90)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self._value = min(self.high, max(self.low, 0.0))
        self.slider.setValue(self._position(self._value))
        self.spin.setValue(self._value)
        self.slider.valueChanged.connect(self._slider_moved)
        self.spin.valueChanged.connect(self._spin_changed)
        self._tooltips()

    def _position(self, value: float) -> int:
        return round((value - self.low) / (self.high - self.low) * self.steps)

    def _slider_moved(self, position: int) -> None:
        self._set(self.low + position / self.steps * (self.high - self.low), source="slider")

    def _spin_changed(self, value: float) -> None:
        if abs(value - self._value) >= 0.5 * 10 ** -self.spin.decimals():   # typed, not our own rounding
            self._set(value, source="spin")

    def _set(self, value: float, source: str = "") -> None:
        value = min(self.high, max(self.low, float(value)))
        changed = value != self._value
        self._value = value
        if source != "slider":
            self.slider.blockSignals(True)
            self.slider.setValue(self._position(value))
            self.slider.blockSignals(False)
        if source != "spin":
            self.spin.blockSignals(True)
            self.spin.setValue(value)
            self.spin.blockSignals(False)
        self._tooltips()
        if changed:
            self.value_changed.emit(value)

    def set_operating_point(self, text: str, *, calibrated: bool = True, tooltip: str = "") -> None:
        """Show ``text`` (e.g. "FAR 0.1 % · FRR 1.6 %") under the control, in the warning colour when
        ``calibrated`` is False, and ``tooltip`` (what moving it trades) on the slider and the box."""
        self.operating_point.setText(text)
        self.operating_point.setProperty("role", "muted" if calibrated else "status-warn")
        repolish(self.operating_point)
        self.operating_point.setVisible(bool(text))
        self._trade = tooltip
        self._tooltips()

    _trade = ""

    def _tooltips(self) -> None:
        exact = f"threshold {self._value:.6g}"
        for widget in (self.slider, self.spin):
            widget.setToolTip(f"{exact}\n\n{self._trade}" if self._trade else exact)
        self.operating_point.set_more_tooltip(self._trade)

    def value(self) -> float:
        """The exact threshold."""
        return self._value

    def setValue(self, value: float) -> None:  # noqa: N802 - Qt naming
        """Set the exact threshold (clamped to the range); emits ``value_changed`` when it changed."""
        self._set(value)
