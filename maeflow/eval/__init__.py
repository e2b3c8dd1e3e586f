"""Evaluating a pretrained encoder on labels: frozen-feature probes and end-to-end fine-tuning.

    from maeflow.eval import evaluate_encoder, finetune_encoder, random_init_like
    result = evaluate_encoder(model, train_ds, test_ds)          # {"knn_top1": ..., "linear_top1": ...}
    baseline = evaluate_encoder(random_init_like(model), train_ds, test_ds)
    tuned = finetune_encoder(model, train_aug_ds, test_ds, epochs=10)   # {"finetune_top1": ...}

Probes use features ``model.forward_features(x)`` (B, D) (the cls token, or the token mean for
encoders without one), extracted once in eval mode without gradients. Two probes run on them:

- kNN (:mod:`maeflow.eval.knn`): cosine similarity, k nearest training samples vote with weight
  ``exp(sim / T)`` (k=20, T=0.07 as in InstDisc/DINO).
- linear probe (:mod:`maeflow.eval.linear`): standardized features (MAE's BatchNorm without
  affine), a linear layer trained with SGD + cosine schedule, deterministic given ``seed``.

Fine-tuning (:mod:`maeflow.eval.finetune`) trains a copy of the tokenizer + encoder together
with a new linear head on ``forward_features`` (AdamW, warm-up + cosine, label smoothing; MAE's
recipe), deterministic given ``seed``; the caller's model is not changed.

:class:`ProbeEvaluator` (:mod:`maeflow.eval.probe`) runs both on a registered dataset with a
config's ``eval`` settings: the trainer's evaluations and ``maeflow eval`` are that one object.
Probes read their datasets with ``augment=False`` (:func:`probe_options`, the one place).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from maeflow.eval.features import _num_classes, extract_features, model_device
from maeflow.eval.finetune import finetune_encoder
from maeflow.eval.knn import knn_predict, knn_top1
from maeflow.eval.linear import linear_probe, standardize
from maeflow.eval.probe import ProbeEvaluator, probe_options


def random_init_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """A freshly initialized model of the same preset and arguments as ``model`` (built with
    ``maeflow.create_model(model.model_name, **model.model_args)`` under ``seed``), on the same
    device: the "no pretraining" baseline for a probe. The global RNG state is left untouched."""
    from maeflow.factory import create_model

    name = getattr(model, "model_name", None)
    if not name:
        raise ValueError("the model has no preset name (model.model_name); build it with maeflow.create_model")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        twin = create_model(name, **dict(getattr(model, "model_args", {}) or {}))
    return twin.to(model_device(model))


def evaluate_encoder(
    model: nn.Module,
    train_dataset: Dataset,
    test_dataset: Dataset,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    knn_k: int = 20,
    knn_temperature: float = 0.07,
    linear_epochs: int = 100,
    linear_lr: float = 0.1,
    seed: int = 0,
    num_workers: int = 0,
    autocast_dtype: torch.dtype | None = None,
    pool: str = "auto",
) -> dict[str, Any]:
    """kNN and linear-probe top-1 (percent) of the frozen encoder of ``model`` on labeled
    datasets (items ``(inputs, label)``, labels >= 0; use their non-augmented variants).

    Returns ``{"knn_top1", "linear_top1", "linear_train_top1", "num_train", "num_test",
    "num_classes", "feature_dim", "knn_k", "seconds"}``. The model is left in the mode it was in.
    ``pool`` chooses the pooled feature (see :func:`extract_features`).
    """
    start = time.perf_counter()
    extract = dict(batch_size=batch_size, device=device, num_workers=num_workers, autocast_dtype=autocast_dtype,
                   pool=pool)  # fmt: skip
    x_train, y_train = extract_features(model, train_dataset, **extract)
    x_test, y_test = extract_features(model, test_dataset, **extract)
    if (y_train < 0).any() or (y_test < 0).any():
        raise ValueError("probes need a labeled dataset, but some items have label -1 (unlabeled)")
    num_classes = _num_classes(train_dataset, test_dataset) or int(max(y_train.max(), y_test.max())) + 1
    if int(max(y_train.max(), y_test.max())) >= num_classes:
        raise ValueError(f"labels exceed the dataset's num_classes ({num_classes})")
    probe_device = torch.device(device) if device is not None else model_device(model)
    x_train, x_test = x_train.to(probe_device), x_test.to(probe_device)
    knn = knn_top1(x_train, y_train, x_test, y_test, knn_k, knn_temperature, num_classes)
    linear = linear_probe(x_train, y_train, x_test, y_test, epochs=linear_epochs, lr=linear_lr,
                          batch_size=batch_size, num_classes=num_classes, seed=seed)  # fmt: skip
    return {
        "knn_top1": knn,
        "linear_top1": linear["top1"],
        "linear_train_top1": linear["train_top1"],
        "num_train": len(y_train),
        "num_test": len(y_test),
        "num_classes": num_classes,
        "feature_dim": x_train.shape[1],
        "knn_k": min(knn_k, len(y_train)),
        "seconds": time.perf_counter() - start,
    }


__all__ = [
    "ProbeEvaluator",
    "evaluate_encoder",
    "extract_features",
    "finetune_encoder",
    "knn_predict",
    "knn_top1",
    "linear_probe",
    "probe_options",
    "random_init_like",
    "standardize",
]
