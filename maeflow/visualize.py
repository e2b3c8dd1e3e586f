"""Dispatch to the visualizer a plugin registered for the model's modality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from maeflow.plugins import registry


@torch.no_grad()
def visualize(
    model,
    inputs: torch.Tensor | None,
    path: str | Path,
    num_samples: int = 4,
    noise: torch.Tensor | None = None,
    **options: Any,
) -> str:
    """Run ``model`` on ``inputs`` (random example inputs when ``None``) and write its modality's
    reconstruction figure to ``path``. Extra ``options`` go to the visualizer."""
    fn = registry("visualizer").get(model.modality)
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        if inputs is None:
            inputs = model.tokenizer.example_inputs(num_samples)
        inputs = inputs[:num_samples].to(device)
        output = model(inputs, noise=noise)
        return fn(model, inputs, output, str(path), **options)
    finally:
        model.train(was_training)
