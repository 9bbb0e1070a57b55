"""The trainer: dataset folders -> alignment cache -> samplers + augmentation -> backbone + loss ->
checkpoints -> validation on a pairs protocol -> a model folder the workstation can load.

    from faceapp.core.progress import run_to_completion
    from faceapp.data import DatasetSpec, evaluate
    from faceapp.training import TrainConfig, train
    result = run_to_completion(train(TrainConfig(data=[DatasetSpec("faces/")], loss="arcface")), print)
    report = run_to_completion(evaluate(result.model_dir, "cfp", "../shared/datasets/cfp", cfp_protocol="FP"))

See docs/training.md.
"""

from faceapp.training.config import AugmentConfig, TrainConfig, ValidationConfig, load_config, save_config
from faceapp.training.loop import TrainingDivergedError, TrainResult, train

__all__ = [
    "AugmentConfig", "TrainConfig", "TrainResult", "TrainingDivergedError", "ValidationConfig", "load_config",
    "save_config", "train",
]
