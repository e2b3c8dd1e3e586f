"""Reconstruction figure for clips: per sample, four frame strips — original | masked (removed
tubelets grey) | reconstruction (every tubelet predicted) | reconstruction + visible (the
predictions where masked, the original where visible: the MAE and VideoMAE figures' panel)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from maeflow import MAEOutput
from maeflow.visualize import check_denormalize, denormalize_note, reconstruction_panels, save_figure, to_display

MASKED_GREY = 0.5  # how removed tubelets are drawn


def video_reconstruction_figure(
    model,
    inputs: torch.Tensor,
    output: MAEOutput,
    path: str | Path,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    max_samples: int = 4,
    max_frames: int = 8,
    decoder_trained: bool = True,
    title: str | None = None,
    denormalize: str = "patch",
) -> str:
    """Write a PNG with four rows per sample (original, masked, reconstruction, reconstruction +
    visible) and one column per shown frame (``max_frames`` spread evenly over the clip).

    ``inputs`` (B, C, T, H, W); ``mean``/``std`` undo the input normalization for display.
    With normalized targets, ``denormalize="patch"`` puts predictions back with each tubelet's
    own statistics (per channel for VideoMAE's targets, borrowed from the original),
    ``"global"`` with one mean/std per channel for all tubelets (a zero prediction is then
    flat; see :func:`maeflow.visualize.reconstruct_tokens`); the caption says which. The
    reconstruction row shows every tubelet as predicted (the decoder is trained on the masked
    ones only), the last row the visible tubelets' true values beside the masked ones'
    predictions. ``decoder_trained=False`` (an
    encoder-only checkpoint) shows a notice instead of reconstructions.
    """
    check_denormalize(denormalize)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tok = model.tokenizer
    n = min(max_samples, inputs.shape[0])
    p = reconstruction_panels(model, inputs, output, n, denormalize, tok.in_chans)  # (n, C, T, H, W) each
    original, masked, recon, pasted = p["original"], p["masked"], p["reconstruction"], p["pasted"]
    # (n, C, T, H, W), True = removed pixel: drawn grey in the masked row
    hidden = tok.untokenize(p["mask"].expand(-1, -1, output.tokens.targets.shape[-1])) > 0.5

    T = original.shape[2]
    frames = torch.linspace(0, T - 1, steps=min(max_frames, T)).round().long().unique().tolist()
    rows = ["original", "masked", "reconstruction", "reconstruction + visible"]
    R = len(rows)
    fig, axes = plt.subplots(R * n, len(frames), figsize=(len(frames) * 1.3, R * n * 1.35), squeeze=False)
    for i in range(n):
        for r, clip in enumerate((original[i], masked[i], recon[i], pasted[i])):
            for j, f in enumerate(frames):
                ax = axes[R * i + r, j]
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(rows[r] if i == 0 else rows[r].split()[0] + (" + vis." if r == 3 else ""),
                                  fontsize=7)  # fmt: skip
                if i == 0 and r == 0:
                    ax.set_title(f"frame {f}", fontsize=7)
                if r >= 2 and not decoder_trained:
                    if j == 0:
                        ax.text(
                            0.05,
                            0.5,
                            "decoder untrained (encoder-only checkpoint)",
                            fontsize=7,
                            va="center",
                            transform=ax.transAxes,
                        )
                    continue
                img = clip[:, f]  # (C, H, W)
                shown = to_display(img, mean, std, hidden[i][:, f] if r == 1 else None, MASKED_GREY)
                ax.imshow(shown, cmap="gray" if img.shape[0] == 1 else None,
                          vmin=0, vmax=1)  # fmt: skip
    ratio = output.mask.float().mean().item()
    lines = [title or f"{model.model_name or 'video MAE'} reconstructions, {ratio:.0%} of tubelets masked"]
    lines += denormalize_note(model, decoder_trained, denormalize, unit="tubelet")
    return save_figure(fig, path, lines, fontsize=8, dpi=100)
