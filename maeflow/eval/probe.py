"""Probing an encoder on labels the way the trainer and ``maeflow eval`` both do it.

:class:`ProbeEvaluator` holds a labelled dataset (built once, on first use) and the ``eval``
settings, and gives kNN / linear-probe top-1 of any encoder on it — plus fine-tuning top-1 at a
final evaluation when ``finetune_epochs`` > 0::

    evaluator = ProbeEvaluator(cfg, model)           # from a run config (the trainer's)
    evaluator(model, final=False)                    # {"knn_top1": ..., "linear_top1": ...}
    evaluator.evaluate(evaluator.twin(model))        # the full result of the random-init twin

:func:`probe_options` is the one place where probes turn augmentation off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from maeflow.config import Config, EvalConfig

_PROBE_KEYS = ("knn_top1", "linear_top1", "linear_train_top1")


def probe_options(dataset: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` for the probes' splits: ``augment=False`` wherever the dataset builder has that
    switch (probes see the data as it is, whatever the options say)."""
    from maeflow.data import builder_options
    from maeflow.plugins import registry

    valid = builder_options(registry("dataset").get(dataset))
    out = dict(options)
    if valid is None or "augment" in valid:
        out["augment"] = False
    return out


def _build(name: str, split: str, options: Mapping[str, Any], model: nn.Module | None):
    from maeflow.data import build_dataset

    return build_dataset(name, split=split, model=model, **dict(options))


class ProbeEvaluator:
    """``fn(model, final=True) -> {"knn_top1", "linear_top1", ...}`` over frozen features
    (datasets built once, on first use). With ``compare_random_init`` the same probes of a
    freshly initialized model of the same preset (:meth:`twin`) are added once, as
    ``random_knn_top1`` / ``random_linear_top1``.

    With ``eval.finetune_epochs`` > 0 a ``final`` call also fine-tunes a copy of the encoder end
    to end (:func:`maeflow.eval.finetune_encoder`) and adds ``finetune_top1`` (and, with
    ``compare_random_init``, ``random_finetune_top1``, computed once). Fine-tuning trains on the
    train split with the dataset's own augmentation default for it (the probes force
    ``augment=False``, :func:`probe_options`) and scores the un-augmented test split. The
    trainer passes ``final=False`` for its periodic evaluations, which therefore only probe.

    ``ProbeEvaluator(cfg, model)`` takes the dataset and settings from a run config (the
    ``eval`` section; its dataset defaults to ``data.name`` with ``data.options``);
    :meth:`for_dataset` names them directly (``maeflow eval``).
    """

    def __init__(self, cfg: Config, model: nn.Module | None = None, **kwargs: Any):
        name = cfg.eval.dataset or cfg.data.name
        options = cfg.eval.options if cfg.eval.dataset else {**cfg.data.options, **cfg.eval.options}
        self._setup(name, options, cfg.eval, cfg.run.seed, model, progress=cfg.train.progress, **kwargs)

    @classmethod
    def for_dataset(
        cls, name: str, options: Mapping[str, Any], settings: EvalConfig, seed: int = 0,
        model: nn.Module | None = None, **kwargs: Any,
    ) -> ProbeEvaluator:  # fmt: skip
        """An evaluator on registered dataset ``name`` with ``options`` (before the probes' rule)."""
        self = cls.__new__(cls)
        self._setup(name, options, settings, seed, model, **kwargs)
        return self

    def _setup(
        self, name: str, options: Mapping[str, Any], settings: EvalConfig, seed: int, model: nn.Module | None,
        progress: bool = True, device: str | torch.device | None = None, pool: str = "auto", num_workers: int = 0,
    ) -> None:  # fmt: skip
        self.name = name
        self.settings = settings
        self.seed = seed
        self.options = probe_options(name, options)
        self.finetune_options = dict(options)  # no augment override: the split's default
        self.model_ref = model  # options the model also has (img_size, ...) default to the model's
        self.progress, self.device, self.pool, self.num_workers = progress, device, pool, num_workers
        self._datasets = None
        self._finetune_train = None
        self._random: dict[str, float] | None = None
        self._random_finetune: dict[str, float] | None = None

    def datasets(self):
        """``(train, test)`` splits the probes read, un-augmented."""
        if self._datasets is None:
            e = self.settings
            self._datasets = (_build(self.name, e.train_split, self.options, self.model_ref),
                              _build(self.name, e.test_split, self.options, self.model_ref))  # fmt: skip
        return self._datasets

    def finetune_train_dataset(self):
        """The training split for fine-tuning, augmented as the dataset does by default (the
        probes' dataset when the options come out the same)."""
        if self._finetune_train is None:
            from maeflow.eval.features import label_subset

            if self.finetune_options == self.options:
                full = self.datasets()[0]
            else:
                full = _build(self.name, self.settings.train_split, self.finetune_options, self.model_ref)
            self._finetune_train = label_subset(full, self.settings.finetune_label_fraction, seed=self.seed)
        return self._finetune_train

    def twin(self, model: nn.Module) -> nn.Module:
        """The random-init baseline: the same preset freshly initialized under ``seed + 1``."""
        from maeflow.eval import random_init_like

        return random_init_like(model, seed=self.seed + 1)

    def _probe(self, model: nn.Module) -> dict[str, Any]:
        from maeflow.eval import evaluate_encoder

        e = self.settings
        train_ds, test_ds = self.datasets()
        return evaluate_encoder(model, train_ds, test_ds, batch_size=e.batch_size, knn_k=e.knn_k,
                                linear_epochs=e.linear_epochs, seed=self.seed, device=self.device,
                                num_workers=self.num_workers, pool=self.pool)  # fmt: skip

    def _finetune(self, model: nn.Module) -> dict[str, Any]:
        from maeflow.eval import finetune_encoder

        e = self.settings
        return finetune_encoder(model, self.finetune_train_dataset(), self.datasets()[1], epochs=e.finetune_epochs,
                                batch_size=e.finetune_batch_size, lr=e.finetune_lr, seed=self.seed,
                                device=self.device, num_workers=self.num_workers, pool=self.pool,
                                layer_decay=e.finetune_layer_decay, progress=self.progress)  # fmt: skip

    def evaluate(self, model: nn.Module, final: bool = True) -> dict[str, Any]:
        """The full result for one encoder: :func:`maeflow.eval.evaluate_encoder`'s, plus the
        ``finetune_*`` results (with ``finetune_epochs``, ``finetune_lr``, ``finetune_batch_size``
        and ``finetune_seconds``) when ``final`` and ``finetune_epochs`` > 0."""
        out = self._probe(model)
        e = self.settings
        if final and e.finetune_epochs > 0:
            tuned = self._finetune(model)
            out.update({k: v for k, v in tuned.items() if k.startswith("finetune_")},
                       finetune_epochs=e.finetune_epochs, finetune_lr=e.finetune_lr,
                       finetune_label_fraction=e.finetune_label_fraction, finetune_num_train=tuned["num_train"],
                       finetune_batch_size=e.finetune_batch_size, finetune_layer_decay=e.finetune_layer_decay,
                       finetune_seconds=tuned["seconds"])  # fmt: skip
        return out

    def __call__(self, model: nn.Module, final: bool = True) -> dict[str, float]:
        result = self.evaluate(model, final)
        out = {k: float(result[k]) for k in (*_PROBE_KEYS, "finetune_top1") if k in result}
        if self.settings.compare_random_init:
            if self._random is None:
                rnd = self._probe(self.twin(model))
                self._random = {f"random_{k}": float(rnd[k]) for k in ("knn_top1", "linear_top1") if k in rnd}
            out.update(self._random)
            if "finetune_top1" in out:
                if self._random_finetune is None:
                    tuned = self._finetune(self.twin(model))
                    self._random_finetune = {"random_finetune_top1": float(tuned["finetune_top1"])}
                out.update(self._random_finetune)
        return out
