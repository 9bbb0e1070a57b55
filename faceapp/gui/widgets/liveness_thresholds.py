"""The Thresholds tab's liveness section: score a labelled folder of live / attack images (progress, cancel),
see APCER and BPCER against the passive threshold, set it at a target BPCER and save it. A thin view of
``faceapp.app.liveness_thresholds.LivenessThresholdsModel``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from faceapp.app.liveness_thresholds import STANDARD_BPCERS, LivenessScores, LivenessThresholdsModel, curve
from faceapp.gui.analyst.forms import PathEdit
from faceapp.gui.analyst.jobs import JobPanel
from faceapp.gui.plots import PlotPanel
from faceapp.gui.widgets.threshold_slider import ThresholdSlider
from faceapp.liveness.policy import PassiveThreshold


class LivenessThresholdsSection(QGroupBox):
    """Liveness (presentation attacks): folder -> scores -> APCER/BPCER trade-off -> saved passive threshold."""

    def __init__(self, ctx: Any, parent: QWidget | None = None) -> None:
        super().__init__("Liveness (presentation attacks)", parent)
        self.ctx = ctx
        self.job = JobPanel(ctx)
        self.model = LivenessThresholdsModel(ctx, ctx.run, self.job.start)
        layout = QVBoxLayout(self)
        self.folder = PathEdit("live/ beside one folder per attack kind (e.g. nuaa_pad)",
                               caption="Choose the labelled folder of live and attack images")
        self.folder.setToolTip("<folder>/live/<subject>/*.jpg and <folder>/<attack kind>/<subject>/*.jpg")
        self.score_button = QPushButton("Score liveness")
        self.score_button.setToolTip("Passive MiniFASNet scores of every image (a job: progress and cancel below)")
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(self.score_button)
        layout.addLayout(row)
        layout.addWidget(self.job)
        self.summary = QLabel("Not scored yet.")
        self.summary.setWordWrap(True)
        self.summary.setProperty("role", "muted")
        layout.addWidget(self.summary)
        self.slider = ThresholdSlider(0.0, 1.0, steps=1000, decimals=4)
        self.slider.setToolTip("Passive threshold: a face is live when its fused score is at least this")
        layout.addWidget(self.slider)
        self.grid = QGridLayout()
        layout.addLayout(self.grid)
        targets = QHBoxLayout()
        self.target_box = QComboBox()
        for value in STANDARD_BPCERS:
            self.target_box.addItem(f"BPCER {100 * value:g} %", value)
        self.target_box.setCurrentIndex(STANDARD_BPCERS.index(0.05))
        self.target_box.setToolTip("The share of live people the passive check may reject (BPCER) when the "
                                   "threshold is set from the scored folder")
        self.set_button = QPushButton("Set at BPCER")
        self.set_button.setToolTip("The highest threshold refusing at most this share of the live images")
        self.save_button = QPushButton("Save liveness threshold")
        self.save_button.setToolTip("Store this threshold for the PAD models (used by Live, verify/identify "
                                    "--liveness and faceapp liveness; audited)")
        targets.addWidget(self.target_box)
        targets.addWidget(self.set_button)
        targets.addWidget(self.save_button)
        layout.addLayout(targets)
        self.stored = QLabel("")
        self.stored.setProperty("role", "muted")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.stored)
        layout.addWidget(self.status)
        self.plot = PlotPanel("APCER / BPCER vs threshold", x_label="passive threshold", y_label="%")
        self.plot.setMinimumHeight(200)
        layout.addWidget(self.plot)
        self._threshold_line = None
        for widget in (self.slider, self.set_button, self.save_button):
            widget.setEnabled(False)

        self.score_button.clicked.connect(self.compute)
        self.slider.value_changed.connect(self.model.set_threshold)
        self.set_button.clicked.connect(lambda: self.slider.setValue(self.model.set_at_bpcer(self.target_box.currentData())))
        self.save_button.clicked.connect(self.model.save)
        self.model.scored.connect(self._scored)
        self.model.point_changed.connect(self._point_changed)
        self.model.stored_changed.connect(self._stored)
        self.model.message.connect(lambda _level, text: self.status.setText(text))

    def compute(self) -> None:
        if self.job.busy:
            return
        self.status.setText("")
        self.model.compute(self.folder.text())

    def _scored(self, scores: LivenessScores) -> None:
        self.summary.setText(scores.summary())
        for widget in (self.slider, self.set_button, self.save_button):
            widget.setEnabled(True)
        self.plot.clear()
        thresholds, apcer, bpcer = curve(scores)
        self.plot.line(thresholds, apcer, name="APCER (attacks accepted)", color="bad")
        self.plot.line(thresholds, bpcer, name="BPCER (live refused)", color="good")
        self._threshold_line = self.plot.vline(self.model.threshold, label="threshold")

    def _point_changed(self, _metrics: Any) -> None:
        if abs(self.slider.value() - self.model.threshold) > 1e-9:
            self.slider.blockSignals(True)
            self.slider.setValue(self.model.threshold)
            self.slider.blockSignals(False)
        if self._threshold_line is not None:
            self._threshold_line.setPos(self.model.threshold)
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for r, (name, value) in enumerate(self.model.readout()):
            self.grid.addWidget(QLabel(name), r, 0)
            self.grid.addWidget(QLabel(value), r, 1)

    def _stored(self, threshold: PassiveThreshold) -> None:
        target = f", target BPCER {threshold.target_bpcer:g}" if threshold.target_bpcer is not None else ""
        self.stored.setText(f"Stored: {threshold.value:.4f} ({threshold.source}{target})")

    def shutdown(self) -> None:
        self.job.shutdown()
