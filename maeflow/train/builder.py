"""Config → built objects → :class:`~maeflow.train.trainer.Trainer`.

The only place where a :class:`~maeflow.config.Config` meets the trainer: it names registered
components (model preset, dataset) and this module builds them, so the trainer itself stays
free of config handling.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from maeflow.config import Config
from maeflow.eval.probe import ProbeEvaluator
from maeflow.runtime import seed_everything, set_threads
from maeflow.train.trainer import Trainer

log = logging.getLogger(__name__)


def build_model(cfg: Config) -> nn.Module:
    """The model preset ``cfg.model.name`` with ``cfg.model.args``, initialized under ``run.seed``."""
    from maeflow.factory import create_model

    set_threads(cfg.run.threads)
    seed_everything(cfg.run.seed)
    return create_model(cfg.model.name, **cfg.model.args)


def build_dataset(name: str, split: str, options: dict[str, Any], model: nn.Module | None = None):
    """A registered dataset; options the model also has (``img_size``, ...) default to the model's."""
    from maeflow.data import build_dataset as _build

    return _build(name, split=split, model=model, **dict(options))


def build_trainer(cfg: Config, callbacks=()) -> Trainer:
    """Build the model, dataset and evaluator a config names, and a :class:`Trainer` for them."""
    model = build_model(cfg)
    train_ds = build_dataset(cfg.data.name, cfg.data.split, cfg.data.options, model)
    evaluator = None
    if cfg.eval.every_epochs or cfg.eval.final:
        evaluator = ProbeEvaluator(cfg, model)
    display = dict(getattr(train_ds, "display_options", None) or {})
    visual_inputs = _visual_inputs(evaluator) if cfg.train.reconstruction else None
    return Trainer(model, train_ds, cfg.train, cfg.data, cfg.run, cfg.eval, evaluator=evaluator, config=cfg.to_dict(),
                   display_options=display, visual_inputs=visual_inputs, callbacks=callbacks)  # fmt: skip


def _visual_inputs(evaluator: ProbeEvaluator | None, n: int = 8) -> torch.Tensor | None:
    """A few held-out, un-augmented inputs for the reconstruction figure when probes are
    configured (their test split); otherwise None and the trainer shows training items."""
    if evaluator is None:
        return None
    ds = evaluator.datasets()[1]
    return torch.stack([torch.as_tensor(ds[i][0]) for i in range(min(n, len(ds)))]) if len(ds) else None
