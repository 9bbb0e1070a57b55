"""Trainer page: train an embedding network with the loss zoo, watch it learn, activate the result.

Left: the run's settings (dataset folder with its summary and alignment-cache status, backbone, loss with
its hyper-parameters as form fields, a distillation teacher with the distillers' weights and parameters as
form fields, embedding size, augmentation, epochs, batch, learning rate and schedule, device, validation
protocol, output). Right: progress with ETA and images/s, live plots of the
training losses, the learning rate and validation accuracy/EER, a log, and when done the model card with
"Activate this model" (re-embeds the gallery, then switches the live pipeline to the new model).

Training is ``faceapp.training.train`` on a worker. Pause and Cancel both set the trainer's own stop flag:
it finishes the current step, writes ``last.pt`` in the run folder and stops; Resume continues from that
checkpoint (or from one picked on disk).

The view of ``faceapp.app.trainer.TrainerModel``, which holds the catalogue, the run, its progress and the
activation (and is the GUI's only way to ``faceapp.training`` and ``faceapp.nn``); this class owns the
form, the plots and the job panels.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton,
    QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget,
)

from faceapp.app.trainer import TrainerModel, card_text, distill_settings, load_catalog
from faceapp.core.paths import data_dir, user_models_dir
from faceapp.gui.analyst.forms import HyperParameterForm, PathEdit, ProtocolFields, float_box, int_box
from faceapp.gui.analyst.jobs import JobPanel
from faceapp.gui.pages import Page, register_page
from faceapp.gui.plots import PlotPanel
from faceapp.gui.settings import read_setting, remember_active_model, write_setting
from faceapp.gui.workers import create_worker

log = logging.getLogger(__name__)

AUGMENT_FIELDS = (("flip", "horizontal flip"), ("affine", "zoom / rotation / shift"), ("color", "colour gains"),
                  ("brightness", "brightness and contrast"), ("grayscale", "greyscale"), ("blur", "Gaussian blur"),
                  ("erase", "random erasing"))
VALIDATION_MODES = (("holdout", "Hold-out identities"), ("lfw", "LFW pairs file"), ("cfp", "CFP protocol folder"),
                    ("none", "None"))


@register_page("trainer", "Trainer", order=40, tooltip="Train an embedding network with the loss zoo", lazy=True)
class TrainerPage(Page):
    """Train an embedding network with the loss zoo, watch it learn, activate the result."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:  # noqa: ANN001 - AppContext
        super().__init__(ctx, parent)
        self.ready = False                      # the form exists (built once torch and the zoo are imported)
        self.model = TrainerModel(ctx, ctx.run)  # the job panels become its starters once the form exists
        model = self.model
        model.summary_ready.connect(self._summary_ready)
        model.summary_failed.connect(self._summary_failed)
        model.run_started.connect(self._run_started)
        model.point.connect(self._point)
        model.rate.connect(self._rate)
        model.log.connect(self.log)
        model.trained.connect(self._trained)
        model.preview_ready.connect(self._confirm_activation)
        model.activated.connect(self._activated)
        model.message.connect(self.model_message)
        model.error.connect(self.ctx.report_error)
        self.curves: dict[str, Any] = {}
        self._outer = QVBoxLayout(self)
        self._outer.setContentsMargins(0, 0, 0, 0)
        if "torch" in sys.modules:               # already loaded (a test, a reload): build now
            self._catalogued(load_catalog())
        else:                                    # importing torch takes seconds: not on the GUI thread
            self._waiting = QLabel("Loading the trainer (PyTorch, the backbones and the loss zoo)...")
            self._waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self._waiting.setProperty("role", "muted")
            self._outer.addWidget(self._waiting)
            worker = create_worker(load_catalog)
            worker.returned.connect(self._catalogued)
            worker.errored.connect(self._catalog_failed)
            self._catalog_worker = worker.start()

    # the model's state, as the tests and the screenshots read it

    @property
    def result(self) -> Any:
        return self.model.result

    @result.setter
    def result(self, value: Any) -> None:
        self.model.result = value

    summary = property(lambda self: self.model.summary)
    points = property(lambda self: self.model.points)
    config = property(lambda self: self.model.config)
    paused_config = property(lambda self: self.model.paused_config)
    paused_checkpoint = property(lambda self: self.model.paused_checkpoint)
    stop_token = property(lambda self: self.model.stop_token)
    losses = property(lambda self: self.model.losses)
    backbones = property(lambda self: self.model.backbones)
    starts = property(lambda self: self.model.starts)
    teachers = property(lambda self: self.model.teachers)
    distill_fields = property(lambda self: self.model.distill_fields)
    cuda = property(lambda self: self.model.cuda)
    augment_defaults = property(lambda self: self.model.augment_defaults)

    def _catalogued(self, catalog: dict[str, Any]) -> None:
        self.model.set_catalog(catalog)
        waiting = getattr(self, "_waiting", None)
        if waiting is not None:
            waiting.hide()
            waiting.deleteLater()
        body = QWidget()
        self._outer.addWidget(body)
        self._build(body)
        self._loss_changed(self.loss_box.currentText())
        self._validation_changed()
        self.model.start_job, self.model.start_activation = self.job.start, self.activation.start
        self.model.start_summary = self.summary_panel.start
        self.job.job_finished.connect(self._update_buttons)
        self.activation.job_finished.connect(self._update_buttons)
        self._update_buttons()
        self.ready = True
        if self.isVisible():
            self.activated()

    def _catalog_failed(self, error: BaseException) -> None:
        self._waiting.setText(f"The trainer cannot start: {error}")
        self.ctx.report_error(error, "Loading the trainer")

    # ================================================================ layout
    def _build(self, body: QWidget) -> None:
        outer = QHBoxLayout(body)
        outer.setContentsMargins(8, 8, 8, 8)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(splitter)
        form = QWidget()
        form_layout = QVBoxLayout(form)
        form_layout.setContentsMargins(0, 0, 6, 0)
        form_layout.addWidget(self._data_group())
        form_layout.addWidget(self._model_group())
        form_layout.addWidget(self._loss_group())
        form_layout.addWidget(self._distill_group())
        form_layout.addWidget(self._augment_group())
        form_layout.addWidget(self._optimisation_group())
        form_layout.addWidget(self._validation_group())
        form_layout.addWidget(self._output_group())
        form_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(form)
        scroll.setMinimumWidth(360)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(scroll, 1)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Train with these settings (a new run)")
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Stop after the current step and keep a checkpoint to resume from")
        self.pause_button.clicked.connect(self.pause)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the run (its checkpoint stays in the run folder)")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume...")
        self.resume_button.setToolTip("Continue the paused run, or a run from a checkpoint file (last.pt)")
        self.resume_button.clicked.connect(self.resume)
        for button in (self.start_button, self.pause_button, self.cancel_button, self.resume_button):
            buttons.addWidget(button)
        left_layout.addLayout(buttons)
        splitter.addWidget(left)
        splitter.addWidget(self._monitor())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([400, 800])

    def _data_group(self) -> QGroupBox:
        box = QGroupBox("Dataset")
        layout = QFormLayout(box)
        self.data_edit = PathEdit("folder of <identity>/<images>, the CFP folder, or a pack of crops (.npz)",
                                  caption="Dataset folder")
        self.data_edit.setText(read_setting("trainer/data", "", str))
        self.data_edit.editingFinished.connect(self.refresh_summary)
        self.data_edit.chosen.connect(self.refresh_summary)
        layout.addRow("Folder", self.data_edit)
        self.identities_edit = QLineEdit()
        self.identities_edit.setPlaceholderText("all (or e.g. s1-s30, 001-400)")
        self.identities_edit.setToolTip("Only these identity folders: numeric ranges and names, comma separated")
        self.identities_edit.editingFinished.connect(self.refresh_summary)
        layout.addRow("Identities", self.identities_edit)
        self.max_per_identity = int_box(0, 0, 100000, tooltip="Images used per identity (0 = all)")
        self.max_per_identity.setSpecialValueText("all")
        self.max_per_identity.editingFinished.connect(self.refresh_summary)
        layout.addRow("Max images / identity", self.max_per_identity)
        self.summary_label = QLabel("Choose a dataset folder.")
        self.summary_label.setWordWrap(True)
        self.summary_label.setProperty("role", "muted")
        layout.addRow(self.summary_label)
        self.histogram = PlotPanel("Images per identity", x_label="images", y_label="identities", legend=False)
        self.histogram.setFixedHeight(150)
        self.histogram_curve = self.histogram.line([0, 1], [0], step=True, fill=True)
        layout.addRow(self.histogram)
        self.summary_panel = JobPanel(self.ctx)
        self.summary_panel.hide()
        layout.addRow(self.summary_panel)
        return box

    def _model_group(self) -> QGroupBox:
        box = QGroupBox("Network")
        layout = QFormLayout(box)
        self.start_box = QComboBox()
        self.start_box.addItem("random initialisation", "")
        self.start_box.setItemData(0, "Train from scratch", Qt.ItemDataRole.ToolTipRole)
        for spec, info in self.starts.items():
            self.start_box.addItem(spec, spec)
            self.start_box.setItemData(self.start_box.count() - 1, info["summary"], Qt.ItemDataRole.ToolTipRole)
        self.start_box.setToolTip("Start from pretrained weights or a model folder (fine-tuning); the network "
                                  "settings then follow the starting point")
        self.start_box.currentIndexChanged.connect(self._start_changed)
        layout.addRow("Start from", self.start_box)
        self.backbone_box = QComboBox()
        for name, text in self.backbones.items():
            self.backbone_box.addItem(name)
            self.backbone_box.setItemData(self.backbone_box.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        self.backbone_box.setCurrentText("mobilefacenet")
        self.backbone_box.setToolTip("The network that maps a 112x112 face to its embedding (hover an entry for "
                                     "its size)")
        layout.addRow("Backbone", self.backbone_box)
        self.embedding_dim = int_box(128, 2, 4096, tooltip="Size of the embedding vector")
        layout.addRow("Embedding size", self.embedding_dim)
        self.input_size = int_box(112, 32, 224, tooltip="Network input side; the aligned 112x112 crops are resized")
        layout.addRow("Input size", self.input_size)
        self.backbone_lr_mult = float_box(1.0, 0.0, 10.0, decimals=3, step=0.05,
                                          tooltip="Backbone learning rate as a fraction of the learning rate (the loss's "
                                                  "head gets the full rate); 0.1 is usual when fine-tuning")
        layout.addRow("Backbone LR x", self.backbone_lr_mult)
        self.freeze_epochs = float_box(0.0, 0.0, 1000.0, decimals=2, step=0.5,
                                       tooltip="Epochs at the start that train the head only (backbone frozen)")
        layout.addRow("Head-only epochs", self.freeze_epochs)
        self.freeze_bn = QCheckBox("Freeze BatchNorm statistics")
        self.freeze_bn.setToolTip("Keep the backbone's BatchNorm running statistics fixed (small batches, fine-tuning)")
        layout.addRow("", self.freeze_bn)
        self.head_init_box = QComboBox()
        self.head_init_box.addItems(["auto", "centroids", "random"])
        self.head_init_box.setToolTip("Classifier head start: class centroids of the starting network's embeddings "
                                      "(auto: when starting from weights) or random")
        layout.addRow("Head init", self.head_init_box)
        self.int8_calibration = int_box(0, 0, 4096, tooltip="Also write the model's int8 network (the fast CPU "
                                        "engine), its activation ranges from this many training crops; 0 = none. "
                                        "30-80 MB of memory a crop while it is written")
        self.int8_calibration.setSpecialValueText("none")
        layout.addRow("int8 calibration crops", self.int8_calibration)
        return box

    def _start_changed(self) -> None:
        """A starting point fixes the architecture: show it and lock the network fields."""
        spec = self.start_box.currentData() or ""
        info = self.starts.get(spec)
        for widget in (self.backbone_box, self.embedding_dim, self.input_size):
            widget.setEnabled(info is None)
        if info is not None:
            self.backbone_box.setCurrentText(info["backbone"])
            self.embedding_dim.setValue(info["embedding_dim"])
            self.input_size.setValue(info["input_size"])
            if self.backbone_lr_mult.value() == 1.0:
                self.backbone_lr_mult.setValue(0.1)

    def _loss_group(self) -> QGroupBox:
        box = QGroupBox("Loss")
        layout = QVBoxLayout(box)
        self.loss_box = QComboBox()
        for name, info in self.losses.items():
            self.loss_box.addItem(name)
            self.loss_box.setItemData(self.loss_box.count() - 1, info["summary"], Qt.ItemDataRole.ToolTipRole)
        self.loss_box.setCurrentText("arcface")
        self.loss_box.setToolTip("The training loss (hover an entry for what it does); its hyper-parameters follow")
        self.loss_box.currentTextChanged.connect(self._loss_changed)
        layout.addWidget(self.loss_box)
        self.loss_help = QLabel("")
        self.loss_help.setWordWrap(True)
        self.loss_help.setProperty("role", "muted")
        layout.addWidget(self.loss_help)
        self.loss_form = HyperParameterForm()
        layout.addWidget(self.loss_form)
        return box

    def _distill_group(self) -> QGroupBox:
        """Teacher and distillation weights: a combo box that also takes a typed model folder, onnx:PATH or dlib,
        and the distillers' weights and hyper-parameters as form fields (enabled with a teacher)."""
        box = QGroupBox("Distillation")
        layout = QFormLayout(box)
        self.teacher_box = QComboBox()
        self.teacher_box.setEditable(True)
        self.teacher_box.addItem("")
        self.teacher_box.addItems(self.teachers)
        self.teacher_box.lineEdit().setPlaceholderText("none (or a model folder, onnx:PATH, dlib)")
        self.teacher_box.setToolTip("Distil from a fixed teacher: a pretrained name, a model folder, onnx:PATH"
                                    "[?mean=R,G,B&std=R,G,B] or dlib (pip install -e \".[dlib]\"). Its embeddings of the "
                                    "training crops are computed once and cached")
        self.teacher_box.currentTextChanged.connect(self._teacher_changed)
        layout.addRow("Teacher", self.teacher_box)
        self.distill_form = HyperParameterForm()
        self.distill_form.set_parameters(self.distill_fields)
        layout.addRow(self.distill_form)
        self._teacher_changed(self.teacher_box.currentText())
        return box

    def _teacher_changed(self, text: str) -> None:
        self.distill_form.setEnabled(bool(text.strip()))

    def distill_settings(self) -> dict[str, Any]:
        """The TrainConfig fields of the distillation form: teacher, the two weights, other parameters."""
        return distill_settings(self.distill_form.values(), self.distill_form.changed_values(),
                                self.teacher_box.currentText())

    def _augment_group(self) -> QGroupBox:
        defaults = self.augment_defaults
        self.augment_box = QGroupBox("Augmentation (probability of each operation)")
        self.augment_box.setCheckable(True)
        self.augment_box.setChecked(True)
        layout = QFormLayout(self.augment_box)
        self.augment_fields = {}
        for key, label in AUGMENT_FIELDS:
            field = float_box(defaults[key], 0.0, 1.0, decimals=2, step=0.05, tooltip=f"probability: {label}")
            self.augment_fields[key] = field
            layout.addRow(label, field)
        return self.augment_box

    def _optimisation_group(self) -> QGroupBox:
        box = QGroupBox("Optimisation")
        layout = QFormLayout(box)
        self.epochs = int_box(10, 1, 100000, tooltip="Passes over the training images")
        layout.addRow("Epochs", self.epochs)
        self.max_steps = int_box(0, 0, 10**8, tooltip="Stop after this many steps in total (0 = no limit)")
        self.max_steps.setSpecialValueText("no limit")
        layout.addRow("Max steps", self.max_steps)
        self.batch_size = int_box(128, 2, 8192, tooltip="Images per step")
        layout.addRow("Batch size", self.batch_size)
        self.pk_k = int_box(4, 2, 64, tooltip="Images per identity in P x K batches (pair and triplet losses)")
        layout.addRow("K per identity", self.pk_k)
        self.optimizer_box = QComboBox()
        self.optimizer_box.addItems(["sgd", "adamw"])
        self.optimizer_box.setToolTip("SGD with momentum (the usual for margin losses) or AdamW")
        layout.addRow("Optimizer", self.optimizer_box)
        self.lr = float_box(0.1, 1e-6, 10.0, decimals=5, step=0.01, tooltip="Peak learning rate")
        layout.addRow("Learning rate", self.lr)
        self.schedule_box = QComboBox()
        self.schedule_box.addItems(["cosine", "step", "constant"])
        self.schedule_box.setToolTip("cosine decay, step decay at 60% and 85% of the run, or constant")
        layout.addRow("Schedule", self.schedule_box)
        self.warmup = float_box(1.0, 0.0, 1000.0, decimals=2, step=0.5, tooltip="Linear warm-up, in epochs")
        layout.addRow("Warm-up epochs", self.warmup)
        self.device_box = QComboBox()
        self.device_box.addItems(["auto", "cpu", "cuda"])
        self.device_box.setToolTip("Where to train: auto picks CUDA when there is a GPU, else the CPU")
        if not self.cuda:
            model = self.device_box.model()
            assert isinstance(model, QStandardItemModel)
            model.item(2).setEnabled(False)
            self.device_box.setItemData(2, "CUDA is not available on this machine", Qt.ItemDataRole.ToolTipRole)
        layout.addRow("Device", self.device_box)
        self.precision_box = QComboBox()
        self.precision_box.addItems(["auto", "fp32", "fp16", "bf16"])
        self.precision_box.setToolTip("auto: bfloat16 on a CUDA GPU that has it, else float16 with loss scaling; "
                                      "float32 on the CPU")
        layout.addRow("Precision", self.precision_box)
        self.time_budget = float_box(0.0, 0.0, 10**7, decimals=0, step=60.0,
                                     tooltip="Fit the learning-rate schedule to this many seconds of training, "
                                             "refitted each epoch from the measured step time (never more than "
                                             "the epochs)")
        self.time_budget.setSpecialValueText("no budget")
        layout.addRow("Time budget (s)", self.time_budget)
        self.threads = int_box(0, 0, 256, tooltip="torch CPU threads (0 = all cores)")
        self.threads.setSpecialValueText("all cores")
        layout.addRow("CPU threads", self.threads)
        self.log_every = int_box(10, 1, 100000, tooltip="Steps between two plotted points")
        layout.addRow("Plot every (steps)", self.log_every)
        return box

    def _validation_group(self) -> QGroupBox:
        box = QGroupBox("Validation (each epoch)")
        layout = QFormLayout(box)
        self.validation_box = QComboBox()
        for key, text in VALIDATION_MODES:
            self.validation_box.addItem(text, key)
        self.validation_box.setToolTip("How each epoch is validated: pairs of held-out identities, or a pairs "
                                       "protocol (LFW / CFP)")
        self.validation_box.currentIndexChanged.connect(self._validation_changed)
        layout.addRow("Protocol", self.validation_box)
        self.holdout = float_box(0.1, 0.0, 0.9, decimals=2, step=0.05,
                                 tooltip="Fraction of the identities kept out of training for validation pairs")
        layout.addRow("Hold-out fraction", self.holdout)
        self.protocol = ProtocolFields(with_format=False)
        layout.addRow(self.protocol)
        self.metric_box = QComboBox()
        self.metric_box.addItems(["accuracy", "eer"])
        self.metric_box.setToolTip("What selects the best checkpoint (exported as the model)")
        layout.addRow("Best by", self.metric_box)
        return box

    def _output_group(self) -> QGroupBox:
        box = QGroupBox("Output")
        layout = QFormLayout(box)
        self.name_edit = QLineEdit(read_setting("trainer/name", "my-model", str))
        self.name_edit.setToolTip("The model's name (in its card and the default folder name)")
        layout.addRow("Model name", self.name_edit)
        self.out_edit = QLineEdit()
        self.out_edit.setToolTip("Folder the trained model is written to (default: the user models folder/<name>)")
        self.out_edit.setPlaceholderText(f"{user_models_dir()}/<name>")
        layout.addRow("Model folder", self.out_edit)
        return box

    def _monitor(self) -> QWidget:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(6, 0, 0, 0)
        self.job = JobPanel(self.ctx)
        self.job.cancel_button.hide()            # Pause / Cancel below the form stop the run
        layout.addWidget(self.job)
        self.rate_label = QLabel("images/s: -")
        self.rate_label.setProperty("role", "muted")
        layout.addWidget(self.rate_label)
        plots = QSplitter(Qt.Orientation.Horizontal)
        self.loss_plot = PlotPanel("Training loss", x_label="step", y_label="loss")
        self.lr_plot = PlotPanel("Learning rate", x_label="step", y_label="lr", legend=False)
        self.val_plot = PlotPanel("Validation", x_label="epoch", y_label="rate")
        if self.val_plot.legend is not None:
            self.val_plot.legend.setOffset((-10, -10))      # bottom right: accuracy climbs to the top
        for plot in (self.loss_plot, self.lr_plot, self.val_plot):
            plot.setMinimumSize(140, 200)          # three side by side beside the form at 1024 px
            plots.addWidget(plot)
        vertical = QSplitter(Qt.Orientation.Vertical)
        vertical.addWidget(plots)
        tabs = QTabWidget()
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        tabs.addTab(self.log_view, "Log")
        card = QWidget()
        card_layout = QVBoxLayout(card)
        card_layout.setContentsMargins(0, 4, 0, 0)
        self.card_view = QPlainTextEdit()
        self.card_view.setReadOnly(True)
        self.card_view.setPlaceholderText("The model card appears here when a run finishes.")
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.card_view.setFont(mono)
        card_layout.addWidget(self.card_view, 1)
        row = QHBoxLayout()
        self.activate_button = QPushButton("Activate this model")
        self.activate_button.setToolTip("Re-embed the gallery with this model, then switch the live pipeline to it")
        self.activate_button.clicked.connect(self.activate)
        row.addWidget(self.activate_button)
        self.activation = JobPanel(self.ctx)
        row.addWidget(self.activation, 1)
        card_layout.addLayout(row)
        tabs.addTab(card, "Model card")
        self.tabs = tabs
        vertical.addWidget(tabs)
        vertical.setSizes([380, 260])
        layout.addWidget(vertical, 1)
        return panel

    # ================================================================ form
    def _loss_changed(self, name: str) -> None:
        help_text = self.model.loss_help(name)
        if help_text is None:
            return
        info = self.losses[name]
        self.loss_help.setText(help_text)
        self.loss_form.set_parameters(info["hyperparameters"])
        self.pk_k.setEnabled(bool(info["requires_pk_sampler"]))

    def _validation_changed(self) -> None:
        mode = self.validation_box.currentData()
        self.holdout.setEnabled(mode == "holdout")
        self.protocol.setEnabled(mode in ("lfw", "cfp"))
        if mode in ("lfw", "cfp"):
            self.protocol.set_format(mode)
        self.metric_box.setEnabled(mode != "none")

    def dataset_spec(self) -> Any:
        """The DatasetSpec of the form (DatasetError when no folder is given)."""
        return self.model.dataset_spec(**self._data_fields())

    def _data_fields(self) -> dict[str, Any]:
        return {"folder": self.data_edit.text(), "identities": self.identities_edit.text(),
                "max_per_identity": self.max_per_identity.value()}

    def refresh_summary(self) -> None:
        """Scan the dataset folder on a worker and show its summary and histogram."""
        if not self.data_edit.text() or self.summary_panel.busy:
            return
        self.summary_label.setText("Scanning...")
        self.model.refresh_summary(**self._data_fields())

    def _summary_ready(self, summary: Any) -> None:
        self.summary_label.setText(summary.describe())
        edges, counts = summary.histogram()
        self.histogram_curve.setData(edges, counts.astype(float), stepMode="center", fillLevel=0.0)
        write_setting("trainer/data", self.data_edit.text())

    def _summary_failed(self, text: str) -> None:
        self.summary_label.setText(text)
        self.histogram_curve.setData([0, 1], [0.0], stepMode="center", fillLevel=0.0)

    def form_values(self) -> dict[str, Any]:
        """What the form says, as ``TrainerModel.build_config`` reads it."""
        mode = self.validation_box.currentData()
        return {
            "name": self.name_edit.text(), "out": self.out_edit.text(), "data": self._data_fields(),
            "augment": ({key: field.value() for key, field in self.augment_fields.items()}
                        if self.augment_box.isChecked() else None),
            "validation_mode": mode, "metric": self.metric_box.currentText(), "holdout": self.holdout.value(),
            "protocol": self.protocol.options() if mode in ("lfw", "cfp") else None,
            "loss": self.loss_box.currentText(), "loss_params": self.loss_form.changed_values(),
            "backbone": self.backbone_box.currentText(), "embedding_dim": self.embedding_dim.value(),
            "input_size": self.input_size.value(), "epochs": self.epochs.value(), "max_steps": self.max_steps.value(),
            "batch_size": self.batch_size.value(), "pk_k": self.pk_k.value(),
            "optimizer": self.optimizer_box.currentText(), "lr": self.lr.value(),
            "schedule": self.schedule_box.currentText(), "warmup_epochs": self.warmup.value(),
            "device": self.device_box.currentText(), "threads": self.threads.value(),
            "log_every": self.log_every.value(), "init": self.start_box.currentData() or "",
            "backbone_lr_mult": self.backbone_lr_mult.value(), "freeze_epochs": self.freeze_epochs.value(),
            "freeze_bn": self.freeze_bn.isChecked(), "head_init": self.head_init_box.currentText(),
            "int8_calibration": self.int8_calibration.value(), "precision": self.precision_box.currentText(), "time_budget_s": self.time_budget.value(),
            "distill": self.distill_settings(),
        }

    def build_config(self, *, resume: Path | None = None) -> Any:
        """The TrainConfig the form describes (DatasetError naming a bad field)."""
        return self.model.build_config(self.form_values(), resume=resume)

    # ================================================================ runs
    @property
    def training(self) -> bool:
        return self.job.busy

    def start(self) -> None:
        """Start a new run with the form's settings."""
        if self.training:
            return
        try:
            config = self.build_config()
        except Exception as error:  # noqa: BLE001 - a bad field is the user's to fix
            self.ctx.report_error(error, "Training settings")
            return
        self._clear_plots()
        self.card_view.clear()
        self.model.start_config(config)
        self._update_buttons()

    def resume(self) -> None:
        """Continue the paused run (from its ``last.pt``), or ask for a checkpoint to resume with the form's
        settings. A run stopped while aligning has no checkpoint yet: it restarts, and the alignment cache
        continues where it stopped."""
        if self.training:
            return
        if not self.model.resume_paused():
            path, _ = QFileDialog.getOpenFileName(self, "Resume from checkpoint", str(data_dir() / "runs"),
                                                  "Checkpoints (*.pt);;All (*)")
            if not path:
                return
            self.model.resume_from(Path(path), self.form_values())
        self._update_buttons()

    def _run_started(self, config: Any) -> None:
        write_setting("trainer/name", config.name)

    def pause(self) -> None:
        """Stop after the current step with a checkpoint; Resume continues the run."""
        self._stop("paused")

    def cancel(self) -> None:
        """Stop the run (the checkpoint stays in its run folder)."""
        self._stop("cancelled")

    def _stop(self, why: str) -> None:
        self.model.stop(why, running=self.training)
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.training
        stopping = bool(self.model.stopping)
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.pause_button.setEnabled(running and not stopping)
        self.cancel_button.setEnabled(running and not stopping)
        self.activate_button.setEnabled(self.result is not None and not self.activation.busy and not running)

    def log(self, text: str) -> None:
        """Append a line to the log pane."""
        self.log_view.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    # ================================================================ progress and plots
    def _clear_plots(self) -> None:
        for plot in (self.loss_plot, self.lr_plot, self.val_plot):
            plot.clear()
        self.curves.clear()
        self.points.clear()
        self.rate_label.setText("images/s: -")

    def _point(self, plot: str, key: str, xs: list, ys: list, style: dict) -> None:
        curve = self.curves.get(key)
        if curve is None:
            panel = {"loss": self.loss_plot, "lr": self.lr_plot, "val": self.val_plot}[plot]
            self.curves[key] = panel.line(xs, ys, name=key, **style)
        else:
            curve.setData(xs, ys)

    def _rate(self, text: str) -> None:
        self.rate_label.setText(text)

    def _trained(self, result: Any) -> None:
        self.card_view.setPlainText(card_text(result.card, result.model_dir))
        self.tabs.setCurrentIndex(1)
        self.refresh_summary()                       # the alignment cache now exists

    # ================================================================ activation
    confirm_box: Any = None           # the open "Activate this model?" question (a QMessageBox; tests answer it)
    confirm_preview: Any = None       # what it shows: faceapp.services.activation.ActivationPreview

    def activate(self) -> None:
        """Ask first (``activation_preview`` on a worker: both models' validation numbers and thresholds, the
        crops to re-embed, the identities the new model will not find); on Yes, re-embed the gallery with the
        trained model (cancellable), then make it the active model."""
        if self.result is None or self.activation.busy or self.confirm_box is not None:
            return
        self.model.preview_activation()

    def _confirm_activation(self, preview: Any) -> None:
        from PySide6.QtWidgets import QMessageBox

        box = QMessageBox(QMessageBox.Icon.Question, "Activate this model?",
                          f"Make {preview.new.model_id} the active model?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText(preview.text())
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText("Activate")
        box.finished.connect(self._confirmation_answered)
        self.confirm_box, self.confirm_preview = box, preview
        box.open()                                     # window-modal, not blocking the event loop

    def _confirmation_answered(self, _result: int) -> None:
        from PySide6.QtWidgets import QMessageBox

        box, preview = self.confirm_box, self.confirm_preview
        self.confirm_box = self.confirm_preview = None
        if box is None:
            return
        clicked = box.clickedButton()
        yes = clicked is not None and box.standardButton(clicked) == QMessageBox.StandardButton.Yes
        box.deleteLater()
        if not yes or self.result is None or self.activation.busy:
            self.model.decline(preview)
            return
        self.model.activate(preview)
        self._update_buttons()

    def _activated(self, result: Any) -> None:
        if result.embedder.folder is not None:
            remember_active_model(Path(result.embedder.folder))      # the next start uses it too
        self.ctx.services_changed.emit()   # pages rebuild their pipelines with the new embedder and gallery
        self.ctx.gallery_changed.emit()    # templates of the new model were added

    # ================================================================ page hooks
    def activated(self) -> None:
        if self.ready and self.summary is None and self.data_edit.text():
            self.refresh_summary()

    def shutdown(self) -> None:
        catalog = getattr(self, "_catalog_worker", None)
        if catalog is not None:
            catalog.wait(60.0)                   # importing torch cannot be interrupted
        if not self.ready:
            return
        if self.training and self.stop_token is not None:
            self.stop_token.cancel()          # the trainer writes last.pt before stopping
        self.job.wait(60.0)
        self.activation.shutdown()
        self.summary_panel.wait(10.0)
