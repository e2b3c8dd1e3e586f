"""Reconstruction figure: per sample, original | masked | reconstruction | reconstruction with
the visible patches pasted back."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from maeflow import MAEOutput
from maeflow.visualize import check_denormalize, denormalize_note, reconstruction_panels, save_figure, to_display


def image_reconstruction_figure(
    model,
    inputs: torch.Tensor,
    output: MAEOutput,
    path: str | Path,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    max_samples: int = 8,
    decoder_trained: bool = True,
    title: str | None = None,
    denormalize: str = "patch",
) -> str:
    """Write a PNG grid, one row per sample. ``mean``/``std`` undo the input normalization for
    display. With norm-pix targets, ``denormalize="patch"`` puts predictions back with each
    patch's own statistics (borrowed from the original), ``"global"`` with one mean/std per
    channel (a zero prediction is then flat; see :func:`maeflow.visualize.reconstruction_panels`);
    the caption says which. ``decoder_trained=False`` (an encoder-only checkpoint) shows a
    notice instead of reconstructions."""
    check_denormalize(denormalize)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(max_samples, inputs.shape[0])
    p = reconstruction_panels(model, inputs, output, n, denormalize, model.tokenizer.in_chans)

    cols = ["original", "masked", "reconstruction", "reconstruction + visible"]
    fig, axes = plt.subplots(n, 4, figsize=(4 * 2.2, n * 2.2), squeeze=False)
    for i in range(n):
        panels = [p["original"][i], p["masked"][i], p["reconstruction"][i], p["pasted"][i]]
        for j, (ax, img) in enumerate(zip(axes[i], panels, strict=True)):
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j], fontsize=9)
            if j >= 2 and not decoder_trained:
                ax.text(
                    0.5,
                    0.5,
                    "decoder untrained\n(encoder-only\ncheckpoint)",
                    ha="center",
                    va="center",
                    fontsize=8,
                    transform=ax.transAxes,
                )
                continue
            ax.imshow(to_display(img, mean, std), cmap="gray" if img.shape[0] == 1 else None)
    ratio = output.mask.float().mean().item()
    lines = [title or f"{model.model_name or 'MAE'} reconstructions, {ratio:.0%} masked"]
    lines += denormalize_note(model, decoder_trained, denormalize)
    return save_figure(fig, path, lines, fontsize=9, dpi=110)
