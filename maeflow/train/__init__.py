"""Pretraining: one :class:`Trainer` for every modality, and the builder that turns a config
into the objects it trains.

    from maeflow.config import load_config
    from maeflow.train import build_trainer
    result = build_trainer(load_config("configs/image/demo.yaml")).fit()
"""

from maeflow.train.builder import ProbeEvaluator, build_model, build_trainer, settings_from_config
from maeflow.train.optim import WarmupCosine, build_optimizer, param_groups
from maeflow.train.trainer import NonFiniteLossError, Trainer, TrainResult, TrainSettings, seed_everything

__all__ = [
    "NonFiniteLossError",
    "ProbeEvaluator",
    "TrainResult",
    "TrainSettings",
    "Trainer",
    "WarmupCosine",
    "build_model",
    "build_optimizer",
    "build_trainer",
    "param_groups",
    "seed_everything",
    "settings_from_config",
]
