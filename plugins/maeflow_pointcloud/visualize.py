"""Reconstruction figure for point clouds: per sample, three 3-D scatter panels —
visible groups | masked groups (truth) | reconstruction (visible groups plus the predicted
masked groups)."""

from __future__ import annotations

from pathlib import Path

import torch

from maeflow import MAEOutput
from maeflow.visualize import check_denormalize, denormalize_note, reconstruct_tokens, save_figure


def _scatter(ax, parts: list[tuple[torch.Tensor, str]], title: str | None, lim: float) -> None:
    for pts, color in parts:
        if pts.numel():
            pts = pts.reshape(-1, 3).numpy()
            # Point-MAE's figures show y up; plot (x, z, y) so shapes stand upright
            ax.scatter(pts[:, 0], pts[:, 2], pts[:, 1], s=4, c=color, depthshade=False, linewidths=0)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_zlim(-lim, lim)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)


def pointcloud_reconstruction_figure(
    model,
    inputs: torch.Tensor,
    output: MAEOutput,
    path: str | Path,
    max_samples: int = 4,
    decoder_trained: bool = True,
    title: str | None = None,
    denormalize: str = "patch",
) -> str:
    """Write a PNG, one row per sample: visible groups | masked truth | reconstruction.

    Groups are drawn at their centers (``Tokens.positions``); predictions are de-normalized by
    the model's target normalizer (identity for Chamfer targets, so both ``denormalize``
    modes, ``"patch"`` and ``"global"``, draw the predictions as predicted; the caption says so).
    ``decoder_trained=False`` (an encoder-only checkpoint) shows a notice instead of the
    reconstruction.
    """
    check_denormalize(denormalize)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tok = model.tokenizer
    n = min(max_samples, inputs.shape[0])
    centers = output.tokens.positions[:n].detach().float().cpu()  # (n, G, 3)
    truth = tok.untokenize(output.tokens.targets[:n].detach().float().cpu(), centers)  # (n, G, k, 3)
    recon = tok.untokenize(reconstruct_tokens(model, output, denormalize, channels=3)[:n].cpu(), centers)
    mask = output.mask[:n].cpu()  # (n, G), True = masked
    lim = float(truth.abs().max().clamp_min(1e-6)) * 0.9

    cols = ["visible groups", "masked groups (truth)", "reconstruction"]
    fig = plt.figure(figsize=(3 * 2.6, n * 2.6))
    for i in range(n):
        vis, hid = truth[i][~mask[i]], truth[i][mask[i]]
        panels = [
            [(vis, "tab:blue")],
            [(vis, "lightgray"), (hid, "tab:orange")],
            [(vis, "tab:blue"), (recon[i][mask[i]], "tab:red")],
        ]
        for j, parts in enumerate(panels):
            ax = fig.add_subplot(n, 3, i * 3 + j + 1, projection="3d")
            if j == 2 and not decoder_trained:
                ax.set_axis_off()
                ax.text2D(0.5, 0.5, "decoder untrained\n(encoder-only\ncheckpoint)", ha="center", va="center",
                          fontsize=8, transform=ax.transAxes)  # fmt: skip
                continue
            _scatter(ax, parts, cols[j] if i == 0 else None, lim)
    ratio = output.mask.float().mean().item()
    lines = [title or f"{model.model_name or 'Point-MAE'}: {ratio:.0%} of groups masked"]
    lines += denormalize_note(model, decoder_trained, denormalize, unit="group")
    if decoder_trained:
        lines += ["predicted groups drawn around the true centers the decoder is given"]
    return save_figure(fig, path, lines, fontsize=9, dpi=100)
