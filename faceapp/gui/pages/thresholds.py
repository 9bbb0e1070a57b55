"""Thresholds page: choose the active model's thresholds from measured error rates, not by guesswork.

Pick a labelled source (the enrolled gallery itself, leave-one-out; a labelled folder; a pairs protocol),
compute the active model's genuine and impostor scores on a worker, and read the consequences of a
threshold: score histograms, ROC and DET curves, FAR/FRR against the threshold, the EER, and for
identification the expected false-positive identification rate at the gallery's size. "Set at FAR" puts
the verify threshold where the impostor scores give the target FAR, "Set identify" the identify threshold
where strangers would be accepted at that rate against the whole gallery; "Save" stores both for the
active model with their source and date, and the Live page picks them up at once.

Every number comes from ``faceapp.services.thresholds``, i.e. ``faceapp.evaluation.metrics``: the same
code and, for a pairs protocol, the same scores as ``faceapp eval``.

The view of ``faceapp.app.thresholds.ThresholdsModel``, which holds the scores, the operating point, the
targets and the stored thresholds; this class draws the curves and binds the sliders and read-outs.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QScrollArea,
    QSplitter, QVBoxLayout, QWidget,
)

from faceapp.app.thresholds import STANDARD_FARS, ThresholdsModel
from faceapp.core.errors import DatasetError
from faceapp.gui.analyst.forms import PathEdit, ProtocolFields, int_box
from faceapp.gui.analyst.jobs import JobPanel
from faceapp.gui.pages import Page, register_page
from faceapp.gui.plots import PlotPanel
from faceapp.gui.widgets.liveness_thresholds import LivenessThresholdsSection
from faceapp.gui.widgets.threshold_slider import ThresholdSlider
from faceapp.services.operating_point import model_readouts

log = logging.getLogger(__name__)

SOURCES = (("gallery", "Enrolled gallery (leave-one-out)"), ("folder", "Labelled folder"),
           ("pairs", "Pairs protocol (LFW / CFP)"))
PLOT_POINTS = 1500


def thin(x: np.ndarray, y: np.ndarray, n: int = PLOT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``n`` points of a monotone curve for drawing (first and last kept)."""
    if x.size <= n:
        return x, y
    keep = np.unique(np.r_[np.linspace(0, x.size - 1, n).astype(int), x.size - 1])
    return x[keep], y[keep]


def log_ticks(values: np.ndarray) -> list[list[tuple[float, str]]]:
    """Ticks of a log10 axis over positive ``values``: decades, plus 2 and 5 x 10^k over one decade and 3 x 10^k
    over two, nothing in between (pyqtgraph labels every minor tick of a short log range, which crowds the
    plots: at 260 px three decades hold only about six labels)."""
    values = values[values > 0]
    if values.size == 0:
        return [[], []]
    low, high = np.floor(np.log10(values.min())), np.ceil(np.log10(values.max()))
    steps = (1, 2, 5) if high - low <= 1 else (1, 3) if high - low <= 2 else (1,)
    ticks = [(np.log10(m * 10.0 ** k), f"{m * 10.0 ** k:g}") for k in range(int(low), int(high) + 1) for m in steps
             if 10 ** low <= m * 10.0 ** k <= 10 ** high * 1.0001]
    return [ticks, []]


@register_page("thresholds", "Thresholds", order=50, tooltip="ROC, FAR/FRR and threshold selection per model", lazy=True)
class ThresholdsPage(Page):
    """ROC, FAR/FRR and threshold selection for the active model."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:  # noqa: ANN001 - AppContext
        super().__init__(ctx, parent)
        self._build()
        self.model = ThresholdsModel(ctx, ctx.run, self.job.start)
        model = self.model
        model.scored.connect(self._scored)
        model.point_changed.connect(self._point_changed)
        model.identify_changed.connect(self.identify_slider.setValue)
        model.stored_changed.connect(self._show_stored)
        model.thresholds_saved.connect(self._thresholds_saved)
        model.message.connect(self.model_message)
        self._source_changed()
        self.threshold.value_changed.connect(self._threshold_moved)
        self.identify_slider.value_changed.connect(model.set_identify)
        for changed in (model.point_changed, self.identify_slider.value_changed, ctx.services_changed):
            changed.connect(self._show_operating_points)      # the model's calibrated cost, as on the Live page
        self.job.job_finished.connect(self._job_done)
        ctx.services_changed.connect(self._services_changed)
        ctx.thresholds_changed.connect(self.load_stored)

    def _show_operating_points(self, *_: Any) -> None:
        """Beside both sliders: FAR (verify) and expected FPIR at N (identify) from the active model's
        calibration curve in its card, or "uncalibrated" in the warning colour (``model_readouts``)."""
        gallery = self.ctx.gallery
        points = model_readouts(gallery.card if gallery is not None else None, verify=self.threshold.value(),
                                identify=self.identify_slider.value(), gallery_size=self.model.gallery_size)
        for slider, point in ((self.threshold, points["verify"]), (self.identify_slider, points["identify"])):
            slider.set_operating_point(point.text, calibrated=point.calibrated, tooltip=point.tooltip)

    # the model's state, as the tests and the screenshots read it
    scores = property(lambda self: self.model.scores)
    curves = property(lambda self: self.model.curves)
    point = property(lambda self: self.model.point)
    target = property(lambda self: self.model.target)

    # ================================================================ layout
    def _build(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(splitter)
        controls = QWidget()
        layout = QVBoxLayout(controls)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.addWidget(self._source_group())
        layout.addWidget(self._threshold_group())
        layout.addWidget(self._save_group())
        self.liveness = LivenessThresholdsSection(self.ctx)        # the passive PAD threshold (APCER/BPCER)
        layout.addWidget(self.liveness)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(controls)
        scroll.setMinimumWidth(340)
        splitter.addWidget(scroll)
        splitter.addWidget(self._plots())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([400, 820])

    def _source_group(self) -> QGroupBox:
        box = QGroupBox("Labelled scores of the active model")
        layout = QVBoxLayout(box)
        self.source_box = QComboBox()
        for key, text in SOURCES:
            self.source_box.addItem(text, key)
        self.source_box.setToolTip("Where the labelled scores come from: the enrolled gallery (every template "
                                   "against every other), a labelled folder, or a pairs protocol")
        self.source_box.currentIndexChanged.connect(self._source_changed)
        layout.addWidget(self.source_box)
        self.source_pages: list[QWidget] = []
        gallery = QLabel("Every enrolled template against every other: genuine = same identity, impostor = "
                         "different identities.")
        gallery.setWordWrap(True)
        gallery.setProperty("role", "muted")
        self.source_pages.append(gallery)
        folder = QWidget()
        f_layout = QFormLayout(folder)
        f_layout.setContentsMargins(0, 0, 0, 0)
        self.folder_edit = PathEdit("folder of <identity>/<images>", caption="Labelled folder")
        f_layout.addRow("Folder", self.folder_edit)
        self.folder_ids = QLineEdit()
        self.folder_ids.setPlaceholderText("all (or e.g. s1-s20)")
        self.folder_ids.setToolTip("Which identity sub-folders to use: all, or names and ranges such as s1-s20")
        f_layout.addRow("Identities", self.folder_ids)
        self.folder_max = int_box(0, 0, 100000, tooltip="Images per identity (0 = all)")
        f_layout.addRow("Max / identity", self.folder_max)
        self.source_pages.append(folder)
        self.protocol = ProtocolFields()
        p_layout = self.protocol.form
        self.policy_box = QComboBox()
        self.policy_box.addItems(["wrong", "reject"])
        self.policy_box.setToolTip("Pairs with an image where no face was found: always an error (wrong), or "
                                   "answered 'different' (reject, the NIST FRVT convention)")
        p_layout.addRow("Failed pairs", self.policy_box)
        self.source_pages.append(self.protocol)
        for widget in self.source_pages:              # only the chosen source's fields are shown
            layout.addWidget(widget)
        self.compute_button = QPushButton("Compute scores")
        self.compute_button.setToolTip("Embed/score the source with the active model (on a worker)")
        self.compute_button.clicked.connect(self.compute)
        layout.addWidget(self.compute_button)
        self.job = JobPanel(self.ctx)
        layout.addWidget(self.job)
        self.source_label = QLabel("No scores yet.")
        self.source_label.setWordWrap(True)
        self.source_label.setProperty("role", "muted")
        layout.addWidget(self.source_label)
        return box

    def _threshold_group(self) -> QGroupBox:
        box = QGroupBox("Verify threshold")
        layout = QVBoxLayout(box)
        what = QLabel("Cosine similarity; a pair is accepted as the same person when its score >= the threshold. "
                      "Drag the slider or the lines in the plots.")
        what.setWordWrap(True)
        what.setProperty("role", "muted")
        layout.addWidget(what)
        self.threshold = ThresholdSlider(-1.0, 1.0)
        self.threshold.setEnabled(False)
        layout.addWidget(self.threshold)
        grid = QGridLayout()
        self.readouts: dict[str, QLabel] = {}
        rows = (("far", "FAR (FMR): impostors accepted"), ("frr", "FRR (FNMR): genuine rejected"),
                ("tar", "TAR (1 - FRR)"), ("eer", "EER (threshold)"), ("fpir", "Expected FPIR, 1-(1-FAR)^N"),
                ("fpir_emp", "Measured FPIR"))
        for r, (key, text) in enumerate(rows):
            name = QLabel(text)
            value = QLabel("-")
            value.setObjectName(f"readout_{key}")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            grid.addWidget(name, r, 0)
            grid.addWidget(value, r, 1)
            self.readouts[key] = value
        layout.addLayout(grid)
        self.far_note = QLabel("")
        self.far_note.setObjectName("far_note")
        self.far_note.setWordWrap(True)
        self.far_note.setProperty("role", "status-warn")
        self.far_note.hide()
        layout.addWidget(self.far_note)
        form = QFormLayout()
        self.gallery_size = int_box(1, 1, 10**8, tooltip="Identities a probe is searched against (N); default: "
                                                           "the identities the active model can search")
        self.gallery_size.valueChanged.connect(self._gallery_size_changed)
        form.addRow("Gallery size N", self.gallery_size)
        self.fpir_note = QLabel("FPIR: a stranger's best score over N identities reaches the threshold. The "
                                "expected value treats the N scores as independent; the measured one searches "
                                "each probe of the source against the other identities.")
        self.fpir_note.setWordWrap(True)
        self.fpir_note.setProperty("role", "muted")
        form.addRow(self.fpir_note)
        layout.addLayout(form)
        targets = QGridLayout()
        targets.addWidget(QLabel("Target FAR / FPIR"), 0, 0)
        self.target_box = QComboBox()
        for far in STANDARD_FARS:
            self.target_box.addItem(f"{far:g}", far)
        self.target_box.setToolTip("The error rate to aim for: FAR for the verify threshold, FPIR at gallery size N "
                                   "for the identify threshold (a target below 1/impostor pairs cannot be measured)")
        targets.addWidget(self.target_box, 0, 1)
        self.set_far_button = QPushButton("Set verify at FAR")
        self.set_far_button.setToolTip("Move the threshold to the lowest value whose FAR is at most the target")
        self.set_far_button.clicked.connect(self.set_at_target_far)
        targets.addWidget(self.set_far_button, 1, 0)
        self.set_fpir_button = QPushButton("Set identify at FPIR")
        self.set_fpir_button.setToolTip("Identify threshold where strangers are accepted at the target rate "
                                        "against a gallery of N identities")
        self.set_fpir_button.clicked.connect(self.set_identify_at_target)
        targets.addWidget(self.set_fpir_button, 1, 1)
        layout.addLayout(targets)
        return box

    def _save_group(self) -> QGroupBox:
        box = QGroupBox("Thresholds of the active model")
        layout = QFormLayout(box)
        self.verify_label = QLabel("-")
        self.verify_label.setToolTip("The slider's value")
        layout.addRow("Verify (1:1)", self.verify_label)
        self.identify_slider = ThresholdSlider(-1.0, 1.0)
        layout.addRow("Identify (1:N)", self.identify_slider)
        self.save_button = QPushButton("Save for active model")
        self.save_button.setToolTip("Store both thresholds for the active model with this source and today's date; "
                                    "the Live page uses them at once")
        self.save_button.clicked.connect(self.save)
        layout.addRow(self.save_button)
        self.stored_label = QLabel("stored: -")
        self.stored_label.setWordWrap(True)
        self.stored_label.setProperty("role", "muted")
        layout.addRow(self.stored_label)
        return box

    def _plots(self) -> QWidget:
        panel = QWidget()
        grid = QGridLayout(panel)
        grid.setContentsMargins(0, 0, 0, 0)
        self.hist_plot = PlotPanel("Score distributions", x_label="cosine similarity", y_label="density")
        self.roc_plot = PlotPanel("ROC", x_label="FAR (log)", y_label="TAR")
        self.det_plot = PlotPanel("DET", x_label="FAR (log)", y_label="FRR (log)")
        self.rate_plot = PlotPanel("Error rates by threshold", x_label="threshold", y_label="rate")
        self.roc_plot.plot_item.setLogMode(x=True, y=False)
        self.det_plot.plot_item.setLogMode(x=True, y=True)
        if self.hist_plot.legend is not None:
            self.hist_plot.legend.setOffset((10, 10))                  # top left: genuine scores pile up on the right
        if self.roc_plot.legend is not None:
            self.roc_plot.legend.setOffset((-10, -40))                 # bottom right: the ROC climbs to the top right
        if self.det_plot.legend is not None:
            self.det_plot.legend.setOffset((10, -40))                  # bottom left: the DET falls to the bottom right
        for i, plot in enumerate((self.hist_plot, self.roc_plot, self.det_plot, self.rate_plot)):
            plot.setMinimumSize(200, 200)          # 2 x 2 beside the controls at 1024 px
            grid.addWidget(plot, i // 2, i % 2)
        self._draw_empty()
        return panel

    def _draw_empty(self) -> None:
        for plot in (self.hist_plot, self.roc_plot, self.det_plot, self.rate_plot):
            plot.clear()
        self.genuine_curve = self.hist_plot.line([0, 1], [0], name="genuine", step=True, fill=True)
        self.impostor_curve = self.hist_plot.line([0, 1], [0], name="impostor", step=True, fill=True)
        self.hist_line = self.hist_plot.vline(0.0, label="threshold", movable=True)
        self.hist_line.sigPositionChanged.connect(self._line_dragged)
        self.roc_curve = self.roc_plot.line([], [], name="ROC")
        self.roc_marker = self.roc_plot.scatter([], [], name="threshold", size=10, color="warn")
        self.det_curve = self.det_plot.line([], [], name="DET")
        self.det_marker = self.det_plot.scatter([], [], name="threshold", size=10, color="warn")
        self.eer_marker = self.det_plot.scatter([], [], name="EER", size=8, color="text_muted", symbol="d")
        self.far_curve = self.rate_plot.line([], [], name="FAR")
        self.frr_curve = self.rate_plot.line([], [], name="FRR")
        self.rate_line = self.rate_plot.vline(0.0, movable=True)
        self.rate_line.sigPositionChanged.connect(self._line_dragged)

    # ================================================================ source
    def _source_changed(self) -> None:
        for i, widget in enumerate(self.source_pages):
            widget.setVisible(i == self.source_box.currentIndex())

    def source_options(self) -> dict[str, Any]:
        """What the chosen source needs (paths, filters, protocol)."""
        return {"folder": self.folder_edit.text(), "identities": self.folder_ids.text().strip(),
                "max_per_identity": self.folder_max.value(), **self.protocol.options(),
                "failure_policy": self.policy_box.currentText()}

    def compute(self) -> None:
        """Score the chosen source with the active model on a worker."""
        if self.job.busy:
            return
        try:
            options = self.source_options()
        except DatasetError as error:
            self.ctx.report_error(error, "Threshold source")
            return
        self.compute_button.setEnabled(False)
        self.model.compute(self.source_box.currentData(), options)

    def _job_done(self) -> None:
        self.compute_button.setEnabled(True)

    def _scored(self, _scores: Any, _curves: Any, n: int) -> None:
        self.source_label.setText(self.model.summary_text())
        self.gallery_size.blockSignals(True)
        self.gallery_size.setValue(int(n))
        self.gallery_size.blockSignals(False)
        self._draw_curves()
        self.threshold.setEnabled(True)
        self._update_buttons()

    def _draw_curves(self) -> None:
        scores, curves = self.scores, self.curves
        assert scores is not None and curves is not None
        self.genuine_curve.setData(curves.bin_edges, curves.genuine_density, stepMode="center", fillLevel=0.0)
        self.impostor_curve.setData(curves.bin_edges, curves.impostor_density, stepMode="center", fillLevel=0.0)
        far, tar = curves.roc.far, curves.roc.tar
        pos = far > 0
        self.roc_curve.setData(*thin(far[pos], tar[pos]))
        det = (far > 0) & (tar < 1)
        self.det_curve.setData(*thin(far[det], 1.0 - tar[det]))
        self.roc_plot.plot_item.getAxis("bottom").setTicks(log_ticks(far))
        self.det_plot.plot_item.getAxis("bottom").setTicks(log_ticks(far[det]))
        self.det_plot.plot_item.getAxis("left").setTicks(log_ticks(1.0 - tar[det]))
        if curves.eer > 0:
            self.eer_marker.setData([curves.eer], [curves.eer])
        else:
            self.eer_marker.setData([], [])
        finite = np.isfinite(curves.roc.thresholds)
        t = curves.roc.thresholds[finite]
        self.far_curve.setData(*thin(t[::-1], far[finite][::-1]))
        self.frr_curve.setData(*thin(t[::-1], 1.0 - tar[finite][::-1]))
        low, high = curves.score_range
        pad = 0.05 * (high - low)
        self.hist_plot.plot_item.setXRange(low - pad, high + pad)
        self.rate_plot.plot_item.setXRange(low - pad, high + pad)
        self.hist_plot.plot_item.enableAutoRange(axis="y")

    # ================================================================ threshold
    def set_threshold(self, value: float) -> None:
        """Move the verify threshold (slider, lines and read-outs follow)."""
        self.threshold.setValue(value)
        self.model.set_verify(self.threshold.value())

    def _threshold_moved(self, value: float) -> None:
        self.model.set_verify(value)

    def _gallery_size_changed(self, n: int) -> None:
        self.model.set_gallery_size(n)

    def _line_dragged(self, line: Any) -> None:
        value = float(line.value())
        if abs(value - self.threshold.value()) > 1e-9:
            self.threshold.setValue(value)

    def _point_changed(self, point: Any) -> None:
        t = self.model.verify
        if abs(self.threshold.value() - t) > 1e-12:
            self.threshold.blockSignals(True)
            self.threshold.setValue(t)
            self.threshold.blockSignals(False)
        for line in (self.hist_line, self.rate_line):
            if abs(float(line.value()) - t) > 1e-12:
                line.blockSignals(True)
                line.setValue(t)
                line.blockSignals(False)
        self.verify_label.setText(f"{t:.6f}".rstrip("0").rstrip("."))
        if point is None:
            return
        for key, text in self.model.readouts().items():
            self.readouts[key].setText(text)
        note = self.model.far_note()
        self.far_note.setText(note)
        self.far_note.setVisible(bool(note))
        markers = self.model.markers()
        for marker, plot, key in ((self.roc_marker, self.roc_plot, "roc"), (self.det_marker, self.det_plot, "det")):
            where = markers[key]
            marker.setData(*(([where[0]], [where[1]]) if where is not None else ([], [])))
            plot.set_note(markers[f"{key}_note"])

    def set_at_target_far(self) -> None:
        """Verify threshold = the lowest threshold whose FAR is at most the chosen target."""
        self.model.set_at_target_far(float(self.target_box.currentData()))

    def set_identify_at_target(self) -> None:
        """Identify threshold for the target FPIR at gallery size N (measured when the source allows)."""
        self.model.set_identify_at_target(float(self.target_box.currentData()))

    # ================================================================ store
    def save_source(self) -> str:
        """The calibration source recorded with saved thresholds."""
        return self.model.save_source()

    def save(self) -> None:
        """Store the verify (slider) and identify thresholds for the active model (on a worker)."""
        self.model.set_verify(self.threshold.value())
        self.model.set_identify(self.identify_slider.value())
        self.model.save()

    def _thresholds_saved(self, _record: Any) -> None:
        self.ctx.thresholds_changed.emit()

    def load_stored(self) -> None:
        """Show the active model's thresholds (store, else model card, else defaults)."""
        self.model.load_stored()

    def _show_stored(self, thresholds: Any) -> None:
        self.stored_label.setText(self.model.stored_text(thresholds))
        self.model.apply_stored(thresholds)
        if self.scores is None:
            self.verify_label.setText(f"{thresholds.verify:.4f}")

    def _update_buttons(self) -> None:
        has = self.scores is not None
        for button in (self.set_far_button, self.set_fpir_button):
            button.setEnabled(has)

    # ================================================================ page hooks
    def _services_changed(self) -> None:
        if self.model.stale():
            self.source_label.setText(self.source_label.text() + "\n(the active model changed: compute again)")
        if self.isVisible():
            self.load_stored()

    def activated(self) -> None:
        self._update_buttons()
        self.load_stored()

    def shutdown(self) -> None:
        self.job.shutdown()
        self.liveness.shutdown()
