"""Pretraining: one :class:`Trainer` recipe for every modality on :mod:`maeflow.runtime`, and the
builder that turns a config into the objects it trains.

    from maeflow.config import load_config
    from maeflow.train import build_trainer
    result = build_trainer(load_config("configs/<modality>/demo.yaml")).fit()
"""

from maeflow.runtime import WarmupCosine, build_optimizer, param_groups, seed_everything
from maeflow.train.builder import ProbeEvaluator, build_model, build_trainer
from maeflow.train.trainer import NonFiniteLossError, Trainer, TrainResult

__all__ = [
    "NonFiniteLossError",
    "ProbeEvaluator",
    "TrainResult",
    "Trainer",
    "WarmupCosine",
    "build_model",
    "build_optimizer",
    "build_trainer",
    "param_groups",
    "seed_everything",
]
