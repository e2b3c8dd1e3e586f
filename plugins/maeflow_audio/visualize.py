"""Reconstruction figure for spectrograms: per sample, original | masked | reconstruction |
reconstruction with the visible patches pasted back. Time runs left to right, frequency (mel
bins) bottom to top."""

from __future__ import annotations

from pathlib import Path

import torch

from maeflow import MAEOutput
from maeflow.visualize import check_denormalize, denormalize_note, reconstruction_panels, save_figure


def _to_display(spec: torch.Tensor, mean: float | None, std: float | None):
    """(1, T, F) normalized spectrogram → (F, T) numpy, in log-mel units when mean/std are given."""
    spec = spec.detach().float().cpu()[0]
    if mean is not None and std is not None:
        spec = spec * (2 * std) + mean  # undo the front end's (x − mean) / (2·std)
    return spec.T.numpy()


def spectrogram_reconstruction_figure(
    model,
    inputs: torch.Tensor,
    output: MAEOutput,
    path: str | Path,
    mean: float | None = None,
    std: float | None = None,
    frame_shift_ms: float | None = None,
    max_samples: int = 8,
    decoder_trained: bool = True,
    title: str | None = None,
    denormalize: str = "patch",
) -> str:
    """Write a PNG, one row per sample. ``mean``/``std`` (the front end's dataset constants)
    show log-mel values instead of normalized ones; ``frame_shift_ms`` labels the time axis in
    seconds. Masked patches are blank in the "masked" panel. With norm-pix targets,
    ``denormalize="patch"`` puts predictions back with each patch's own statistics (borrowed
    from the original), ``"global"`` with one mean/std for all patches (a zero prediction is
    then flat); the caption says which. ``decoder_trained=False`` (an encoder-only checkpoint)
    shows a notice instead."""
    check_denormalize(denormalize)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n = min(max_samples, inputs.shape[0])
    p = reconstruction_panels(model, inputs, output, n, denormalize, channels=1)
    original, masked, recon_img, pasted = p["original"], p["masked"], p["reconstruction"], p["pasted"]
    masked_tokens = p["mask"].expand(-1, -1, model.tokenizer.target_dim)
    blank = model.tokenizer.untokenize(masked_tokens).bool()  # (n, 1, T, F), True where masked

    T = original.shape[2]
    extent = None
    xlabel = "frame"
    if frame_shift_ms:
        extent = (0, T * frame_shift_ms / 1000, 0, original.shape[3])
        xlabel = "time (s)"
    values = np.concatenate([_to_display(original[i], mean, std).ravel() for i in range(n)])
    vmin, vmax = float(np.percentile(values, 1)), float(np.percentile(values, 99.5))  # one color scale

    cols = ["original", "masked", "reconstruction", "reconstruction + visible"]
    fig, axes = plt.subplots(n, 4, figsize=(4 * 3.0, n * 1.9), squeeze=False)
    for i in range(n):
        panels = [original[i], masked[i], recon_img[i], pasted[i]]
        for j, (ax, spec) in enumerate(zip(axes[i], panels, strict=True)):
            if i == 0:
                ax.set_title(cols[j], fontsize=9)
            if i == n - 1:
                ax.set_xlabel(xlabel, fontsize=8)
            if j == 0:
                ax.set_ylabel("mel bin", fontsize=8)
            ax.tick_params(labelsize=7)
            if j >= 2 and not decoder_trained:
                ax.text(0.5, 0.5, "decoder untrained (encoder-only checkpoint)", ha="center", va="center",
                        fontsize=8, transform=ax.transAxes)  # fmt: skip
                continue
            img = _to_display(spec, mean, std)
            if j == 1:
                img = np.ma.masked_where(_to_display(blank[i].float(), None, None) > 0.5, img)
            ax.imshow(img, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                      extent=extent, interpolation="nearest")  # fmt: skip
    ratio = output.mask.float().mean().item()
    lines = [title or f"{model.model_name or 'Audio-MAE'} spectrogram reconstructions, {ratio:.0%} masked"]
    lines += denormalize_note(model, decoder_trained, denormalize)
    return save_figure(fig, path, lines, fontsize=9, dpi=100)
