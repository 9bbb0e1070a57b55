"""Training configuration: plain dataclasses that round-trip through JSON (config files, checkpoints,
model cards) and that the CLI and the GUI fill field by field.

``TrainConfig.from_dict`` / ``load_config`` reject unknown keys and wrong types with a ``DatasetError``
naming the field, so a typo in a config file is an error, not a silently ignored setting.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

from faceapp.core.errors import DatasetError
from faceapp.data.datasets import LAYOUTS, DatasetSpec

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step", "constant")
SAMPLERS = ("auto", "shuffle", "pk")
AUGMENT_ON = ("auto", "cpu", "device")
HEAD_INITS = ("auto", "centroids", "random")
VAL_FORMATS = ("lfw", "cfp")
VAL_METRICS = ("accuracy", "eer")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DATA_ON_DEVICE = ("auto", "on", "off")


@dataclass
class AugmentConfig:
    """"One-to-many" augmentation of aligned crops; each operation has its own probability (0 = off)."""

    flip: float = 0.5
    affine: float = 0.3
    max_scale: float = 0.08          # +- relative zoom
    max_rotation: float = 8.0        # +- degrees
    max_shift: float = 0.05          # +- fraction of the side
    color: float = 0.2
    color_strength: float = 0.1      # +- per-channel gain
    brightness: float = 0.3
    brightness_strength: float = 0.25  # +- brightness offset and contrast gain
    grayscale: float = 0.1
    blur: float = 0.1
    blur_sigma: float = 1.2          # max Gaussian sigma (pixels)
    erase: float = 0.1
    erase_area: float = 0.15         # max erased fraction of the crop

    @classmethod
    def off(cls) -> "AugmentConfig":
        """Every operation disabled."""
        return cls(flip=0, affine=0, color=0, brightness=0, grayscale=0, blur=0, erase=0)


@dataclass
class ValidationConfig:
    """Validation each epoch: a pairs protocol, or generated pairs over held-out identities.

    pairs: LFW pairs.txt, or the CFP folder when format is "cfp"; root: the LFW image root.
    holdout: fraction of the training identities kept out of training for validation when ``pairs`` is
    empty (0 disables validation then). metric: what selects the best checkpoint.
    """

    pairs: str = ""
    format: str = "lfw"
    root: str = ""
    protocol: str = "FF"
    folds: list[int] = field(default_factory=list)
    holdout: float = 0.1
    holdout_pairs: int = 1000
    metric: str = "accuracy"
    flip_tta: bool = False
    failure_policy: str = "wrong"
    batch_size: int = 256


@dataclass
class TrainConfig:
    """Everything one training run depends on (saved in checkpoints and the model card)."""

    data: list[DatasetSpec] = field(default_factory=list)
    name: str = "model"
    out: str = ""                    # model folder to export the best checkpoint to; "" = <data>/models/<name>
    run_dir: str = ""                # checkpoints and logs; "" = <data>/runs/<name>
    cache_dir: str = ""              # alignment caches; "" = <cache>/aligned
    loss: str = "arcface"
    loss_params: dict[str, Any] = field(default_factory=dict)
    backbone: str = "mobilefacenet"
    backbone_params: dict[str, Any] = field(default_factory=dict)
    embedding_dim: int = 128
    input_size: int = 112            # network input side; aligned 112x112 crops are resized to it
    epochs: int = 10
    max_steps: int = 0               # stop after this many steps in total (0 = no limit)
    batch_size: int = 128
    sampler: str = "auto"            # auto: P x K for losses that need it, shuffled otherwise
    pk_k: int = 4                    # K images per identity in P x K batches (P = batch_size // K)
    min_images: int = 1              # identities with fewer usable images are dropped
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    min_lr: float = 0.0              # cosine floor, as a fraction of lr
    step_milestones: list[float] = field(default_factory=lambda: [0.6, 0.85])   # fractions of the run
    step_gamma: float = 0.1
    grad_clip: float = 5.0           # max gradient norm (0 = off)
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    precision: str = "auto"          # auto (bf16 on CUDA that has it, else fp16 + GradScaler; fp32 on the CPU) | fp32
                                     # | fp16 | bf16 (faceapp.training.accel); old configs' amp = true/false: auto/fp32
    data_on_device: str = "auto"     # the training set on the device as uint8: auto (CUDA, batches built there,
                                     # it fits) | on | off
    time_budget_s: float = 0.0       # fit the schedule's total steps to this many seconds of training (0 = none)
    channels_last: bool = True       # NHWC tensors: PyTorch's CPU depthwise convs train several times faster
    augment_on: str = "auto"         # where augmentation runs: auto (on the GPU when training on CUDA, else numpy on
                                     # the CPU) | cpu (numpy/OpenCV, augment.py) | device (torch, torch_augment.py)
    seed: int = 0
    threads: int = 0                 # torch CPU threads (0 = all cores)
    checkpoint_every: int = 0        # steps between checkpoints (0 = only at each epoch end)
    keep_checkpoints: int = 2        # periodic checkpoints kept (best.pt and last.pt are separate)
    log_every: int = 10              # steps between progress events
    resume: str = ""                 # checkpoint to resume from
    init: str = ""                   # starting point: a model folder or a pretrained name (faceapp.embedding.pretrained)
    backbone_lr_mult: float = 1.0    # the backbone's learning rate as a fraction of lr (the loss's head gets lr)
    freeze_epochs: float = 0.0       # epochs at the start with the backbone frozen (weights and BN statistics)
    freeze_bn: bool = False          # keep the backbone's BatchNorm statistics fixed for the whole run
    head_init: str = "auto"          # auto (centroids when starting from weights) | centroids | random
    teacher: str = ""                # distil from: a pretrained name, a model folder, onnx:PATH or dlib ("" = none)
    distill_embed_weight: float = 1.0        # weight of 1 - cos(projected student, teacher) (with a teacher)
    distill_relational_weight: float = 0.0   # weight of the batch similarity-matrix match (with a teacher)
    distill_params: dict[str, Any] = field(default_factory=dict)   # e.g. {"relational.criterion": "smooth_l1"}
    int8_calibration: int = 0        # also write the exported model's int8 network (faceapp.embedding.int8), its
                                     # activation ranges from this many training crops (0 = none; at least 16)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)

    def distill_weights(self) -> dict[str, float]:
        """The positive distillation weights by distiller name (``faceapp.nn.losses.distill``); {} without a teacher."""
        if not self.teacher:
            return {}
        weights = {"embed": self.distill_embed_weight, "relational": self.distill_relational_weight}
        return {k: w for k, w in weights.items() if w > 0}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "TrainConfig":
        """Build from a nested dict, checking every key and type; ``source`` names the origin in errors.

        The old ``amp`` setting (before ``precision``) is read: true = "auto", false = "fp32"."""
        if isinstance(data, dict) and "amp" in data:
            data = dict(data)
            amp = data.pop("amp")
            if not isinstance(amp, bool):
                raise DatasetError(f"{source}.amp: expected true or false, got {amp!r}")
            if "precision" in data:
                raise DatasetError(f"{source}: amp is the old name of precision; give precision only "
                                   "(auto, fp32, fp16 or bf16)")
            data["precision"] = "auto" if amp else "fp32"
        return _build(cls, data, source)

    def validate(self) -> "TrainConfig":
        """Check values that have a fixed set of choices or ranges; returns self."""
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("sampler", self.sampler, SAMPLERS)
        _choice("augment_on", self.augment_on, AUGMENT_ON)
        _choice("head_init", self.head_init, HEAD_INITS)
        _choice("precision", self.precision, PRECISIONS)
        _choice("data_on_device", self.data_on_device, DATA_ON_DEVICE)
        if not self.time_budget_s >= 0:
            raise DatasetError(f"training setting time_budget_s must be >= 0 (0 = no budget), got {self.time_budget_s}")
        if self.backbone_lr_mult < 0:
            raise DatasetError(f"training setting backbone_lr_mult must be >= 0, got {self.backbone_lr_mult}")
        if self.freeze_epochs < 0:
            raise DatasetError(f"training setting freeze_epochs must be >= 0, got {self.freeze_epochs}")
        if self.int8_calibration != 0 and self.int8_calibration < 16:
            raise DatasetError(f"training setting int8_calibration must be 0 (no int8 network) or at least 16 "
                               f"crops, got {self.int8_calibration}")
        for key in ("distill_embed_weight", "distill_relational_weight"):
            if not getattr(self, key) >= 0:
                raise DatasetError(f"training setting {key} must be >= 0, got {getattr(self, key)}")
        if self.teacher and not self.distill_weights():
            raise DatasetError("a teacher is set but both distillation weights are 0: set distill_embed_weight "
                               "or distill_relational_weight (--distill-embed / --distill-relational)")
        _choice("validation.format", self.validation.format, VAL_FORMATS)
        _choice("validation.metric", self.validation.metric, VAL_METRICS)
        for spec in self.data:
            _choice("data.layout", spec.layout, LAYOUTS)
        positive = {"batch_size": self.batch_size, "embedding_dim": self.embedding_dim, "pk_k": self.pk_k,
                    "log_every": self.log_every, "min_images": self.min_images}
        for key, value in positive.items():
            if value < 1:
                raise DatasetError(f"training setting {key} must be at least 1, got {value}")
        if self.epochs < 1 and self.max_steps < 1:
            raise DatasetError("training setting epochs must be at least 1 (or set max_steps)")
        if self.lr <= 0:
            raise DatasetError(f"training setting lr must be positive, got {self.lr}")
        if not 0.0 <= self.validation.holdout < 1.0:
            raise DatasetError(f"validation.holdout must be in [0, 1), got {self.validation.holdout}")
        return self


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise DatasetError(f"training setting {key} = {value!r}: expected one of {', '.join(choices)}")


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: expected a table/object, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise DatasetError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    values = {}
    for key, value in data.items():
        values[key] = _convert(hints[key], value, f"{where}.{key}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise DatasetError(f"{where}: {exc}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = getattr(hint, "__origin__", None)
    if is_dataclass(hint):
        return _build(hint, value, where)
    if origin is list:
        (item,) = hint.__args__
        if not isinstance(value, list):
            raise DatasetError(f"{where}: expected a list, got {value!r}")
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise DatasetError(f"{where}: expected a table/object, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise DatasetError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DatasetError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DatasetError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise DatasetError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def load_config(path: str | Path) -> TrainConfig:
    """Read a JSON (``.json``) or TOML (``.toml``) training config file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"training config {file}: cannot read ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(text) if file.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DatasetError(f"training config {file}: not valid {'TOML' if file.suffix.lower() == '.toml' else 'JSON'}: {exc}") from None
    return TrainConfig.from_dict(data, source=str(file)).validate()


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write the config as JSON (readable back with ``load_config``)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    return file
