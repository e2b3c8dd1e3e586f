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


def _probe_options(options: dict[str, Any], name: str) -> dict[str, Any]:
    """Probes read un-augmented items where the dataset has that switch."""
    from maeflow.data import builder_options
    from maeflow.plugins import registry

    valid = builder_options(registry("dataset").get(name))
    out = dict(options)
    if valid is None or "augment" in valid:
        out.setdefault("augment", False)
    return out


class ProbeEvaluator:
    """``fn(model, final=True) -> {"knn_top1", "linear_top1", ...}`` over frozen features
    (datasets built once, on first use). With ``compare_random_init`` the same probes of a
    freshly initialized model of the same preset are added once, as ``random_knn_top1`` /
    ``random_linear_top1``.

    With ``eval.finetune_epochs`` > 0 a ``final`` call also fine-tunes a copy of the encoder end
    to end (:func:`maeflow.eval.finetune_encoder`) and adds ``finetune_top1`` (and, with
    ``compare_random_init``, ``random_finetune_top1``, computed once). Fine-tuning trains on the
    train split with the dataset's own augmentation default for it (the probes force
    ``augment=False``) and scores the un-augmented test split. The trainer passes
    ``final=False`` for its periodic evaluations, which therefore only probe."""

    def __init__(self, cfg: Config, model: nn.Module):
        self.cfg = cfg
        self.name = cfg.eval.dataset or cfg.data.name
        options = cfg.eval.options if cfg.eval.dataset else {**cfg.data.options, **cfg.eval.options}
        self.options = _probe_options(options, self.name)
        self.finetune_options = dict(options)  # no augment override: the split's default
        self.model_ref = model
        self._datasets = None
        self._finetune_train = None
        self._random: dict[str, float] | None = None
        self._random_finetune: dict[str, float] | None = None

    def datasets(self):
        if self._datasets is None:
            e = self.cfg.eval
            self._datasets = (
                build_dataset(self.name, e.train_split, self.options, self.model_ref),
                build_dataset(self.name, e.test_split, self.options, self.model_ref),
            )
        return self._datasets

    def finetune_train_dataset(self):
        """The training split for fine-tuning, augmented as the dataset does by default (the
        probes' dataset when the options come out the same)."""
        if self._finetune_train is None:
            if self.finetune_options == self.options:
                self._finetune_train = self.datasets()[0]
            else:
                self._finetune_train = build_dataset(self.name, self.cfg.eval.train_split, self.finetune_options,
                                                     self.model_ref)  # fmt: skip
        return self._finetune_train

    def _probe(self, model: nn.Module) -> dict[str, Any]:
        from maeflow.eval import evaluate_encoder

        e = self.cfg.eval
        train_ds, test_ds = self.datasets()
        return evaluate_encoder(model, train_ds, test_ds, batch_size=e.batch_size, knn_k=e.knn_k,
                                linear_epochs=e.linear_epochs, seed=self.cfg.run.seed)  # fmt: skip

    def _finetune(self, model: nn.Module) -> float:
        from maeflow.eval import finetune_encoder

        e = self.cfg.eval
        result = finetune_encoder(model, self.finetune_train_dataset(), self.datasets()[1], epochs=e.finetune_epochs,
                                  batch_size=e.finetune_batch_size, lr=e.finetune_lr, seed=self.cfg.run.seed,
                                  progress=self.cfg.train.progress)  # fmt: skip
        return float(result["finetune_top1"])

    def _twin(self, model: nn.Module) -> nn.Module:
        from maeflow.eval import random_init_like

        return random_init_like(model, seed=self.cfg.run.seed + 1)

    def __call__(self, model: nn.Module, final: bool = True) -> dict[str, float]:
        result = self._probe(model)
        out = {k: float(result[k]) for k in ("knn_top1", "linear_top1", "linear_train_top1") if k in result}
        finetune = final and self.cfg.eval.finetune_epochs > 0
        if finetune:
            out["finetune_top1"] = self._finetune(model)
        if self.cfg.eval.compare_random_init:
            if self._random is None:
                rnd = self._probe(self._twin(model))
                self._random = {f"random_{k}": float(rnd[k]) for k in ("knn_top1", "linear_top1") if k in rnd}
            out.update(self._random)
            if finetune:
                if self._random_finetune is None:
                    self._random_finetune = {"random_finetune_top1": self._finetune(self._twin(model))}
                out.update(self._random_finetune)
        return out


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
