"""The trainer: dataset folders -> alignment cache -> samplers + augmentation -> backbone + loss ->
checkpoints -> validation on a pairs protocol -> a model folder the workstation can load.

    from faceapp.core.progress import run_to_completion
    from faceapp.training import DatasetSpec, TrainConfig, train, evaluate
    result = run_to_completion(train(TrainConfig(data=[DatasetSpec("faces/")], loss="arcface")), print)
    report = run_to_completion(evaluate(result.model_dir, "cfp", "../shared/datasets/cfp", cfp_protocol="FP"))

See docs/training.md.
"""

from faceapp.training.cache import AlignedSet, AlignSettings, align_images, open_cached
from faceapp.training.config import AugmentConfig, DatasetSpec, TrainConfig, ValidationConfig, load_config, save_config
from faceapp.training.evaluate import evaluate, evaluate_identification, evaluate_protocol
from faceapp.training.loop import TrainingDivergedError, TrainResult, train

__all__ = [
    "AlignSettings", "AlignedSet", "AugmentConfig", "DatasetSpec", "TrainConfig", "TrainResult",
    "TrainingDivergedError", "ValidationConfig", "align_images", "evaluate", "evaluate_identification",
    "evaluate_protocol", "load_config", "open_cached", "save_config", "train",
]
