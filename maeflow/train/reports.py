"""What a run reports besides its losses: probe evaluations, the attention backends ``auto``
chose, and the final reconstruction figure. The trainer calls these on the main process."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


def takes_final(fn: Callable[..., Any]) -> bool:
    """Whether an evaluator accepts a ``final`` keyword (plain ``fn(model)`` ones do not)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any((p.name == "final" and p.kind is not p.POSITIONAL_ONLY) or p.kind is p.VAR_KEYWORD for p in params)


def run_evaluator(evaluator: Callable[..., dict[str, Any]], model: nn.Module, final: bool) -> dict[str, float]:
    """``evaluator(model[, final=...])`` in eval mode (the mode is restored); numeric results only."""
    was_training = model.training
    model.eval()
    try:
        kwargs = {"final": final} if takes_final(evaluator) else {}
        out = evaluator(model, **kwargs)
    finally:
        model.train(was_training)
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float))}


class AttentionLog:
    """Writes what ``attention="auto"`` chose per call shape to the run log (metrics.jsonl,
    ``{"type": "attention", "choices": {...}}``), once per new choice."""

    def __init__(self) -> None:
        self.logged: dict[str, str] = {}

    def write(self, metrics, step: int) -> None:
        from maeflow.nn.attention import attention_choices

        new = {k: v for k, v in attention_choices().items() if self.logged.get(k) != v}
        if new:
            self.logged.update(new)
            metrics.write({"type": "attention", "step": step, "choices": new})


def reconstruction_figure(model: nn.Module, dataset, inputs: torch.Tensor | None, path: Path, seed: int,
                          display_options: dict[str, Any]) -> Path | None:  # fmt: skip
    """Masked inputs, reconstructions and originals of a few ``inputs`` (default: the first
    items of ``dataset``) at ``path``, masked under a generator seeded from ``seed`` (the global
    RNG is left as it was); None when the modality has no visualizer for them."""
    from maeflow.visualize import visualize

    try:
        if inputs is None:
            inputs = torch.stack([torch.as_tensor(dataset[i][0]) for i in range(min(8, len(dataset)))])
        g = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
            visualize(model, inputs, path, num_samples=min(8, inputs.shape[0]), **display_options)
        log.info("wrote %s", path)
        return path
    except (ValueError, AttributeError) as exc:  # no visualizer for this modality, or inputs it cannot show
        log.warning("no reconstruction figure: %s", exc)
        return None


def loss_baseline(model: nn.Module, dataset, device: torch.device, seed: int, n: int = 64) -> dict[str, float] | None:
    """Trivial baselines of the pretraining loss (:func:`maeflow.eval.baseline.trivial_loss`) on
    the first ``n`` training items, read as the loader reads them for epoch 0 (so augmentation
    and every RNG are as they were afterwards); None when the model is not a masked
    autoencoder the baseline understands."""
    from maeflow.data import SeededItems
    from maeflow.eval.baseline import trivial_loss

    try:
        items = SeededItems(dataset, seed)
        inputs = torch.stack([torch.as_tensor(items[(i, i, 0)][0]) for i in range(min(n, len(dataset)))])
        return trivial_loss(model, inputs.to(device), seed)
    except (ValueError, AttributeError, TypeError, RuntimeError) as exc:
        log.warning("no trivial loss baseline: %s", exc)
        return None
