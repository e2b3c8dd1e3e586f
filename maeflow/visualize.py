"""Dispatch to the visualizer a plugin registered for the model's modality."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
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


def to_display(
    img: torch.Tensor,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    hidden: torch.Tensor | None = None,
    fill: float = 0.5,
) -> np.ndarray:
    """A normalized (C, H, W) picture → (H, W) or (H, W, 3) numpy in [0, 1] for ``imshow``.

    ``mean``/``std`` (per channel, or one value) undo the input normalization; pixels where
    ``hidden`` (broadcastable to the picture, True = hidden) is set are drawn as ``fill``.
    One channel gives a grey image, three or more an RGB one, two their mean.
    """
    img = img.detach().float().cpu()
    if mean is not None and std is not None:
        m = torch.tensor(mean, dtype=img.dtype).reshape(-1, 1, 1)
        s = torch.tensor(std, dtype=img.dtype).reshape(-1, 1, 1)
        if m.shape[0] in (1, img.shape[0]) and s.shape[0] in (1, img.shape[0]):
            img = img * s + m
    img = img.clamp(0, 1)
    if hidden is not None:
        img = img.masked_fill(hidden.cpu(), fill)
    if img.shape[0] == 1:
        return img[0].numpy()
    if img.shape[0] >= 3:
        return img[:3].permute(1, 2, 0).numpy()
    return img.mean(0).numpy()


NORM_PIX_NOTE = "predictions de-normalized with each patch's own mean/std (norm-pix targets)"

DENORMALIZE_MODES = ("patch", "global")


def check_denormalize(mode: str) -> str:
    if mode not in DENORMALIZE_MODES:
        raise ValueError(f"denormalize must be one of {DENORMALIZE_MODES}, got {mode!r}")
    return mode


def reconstruct_tokens(model, output, denormalize: str = "patch", channels: int = 1) -> torch.Tensor:
    """Predictions in raw target space (B, L, P), for a figure.

    ``denormalize="patch"`` (what the reference visualizations show): each token's prediction is
    put back with that token's own target mean/std, taken from the original — the picture then
    borrows every masked patch's true brightness, colour and contrast, and a model that predicts
    nothing (zero, the patch mean) still looks plausible. ``"global"``: one mean and one scale
    per channel for all tokens (the averages over the shown samples of the tokens' means and
    stds), so nothing of a masked patch leaks in and a zero prediction is a flat picture.
    ``channels``: values of a token are ordered (..., channel), ``P = n·channels``. Identity
    targets are shown as predicted in both modes.
    """
    check_denormalize(denormalize)
    pred, targets = output.pred.detach().float(), output.tokens.targets.detach().float()
    norm = model.target_normalizer
    if denormalize == "patch":
        return norm.denormalize(pred, targets)
    # any per-token affine normalizer: denormalize(0) is the token's mean, denormalize(1) − that its scale
    mean = norm.denormalize(torch.zeros_like(pred), targets)
    scale = norm.denormalize(torch.ones_like(pred), targets) - mean
    P = pred.shape[-1]
    C = channels if channels > 0 and P % channels == 0 else 1

    def per_channel(v: torch.Tensor) -> torch.Tensor:  # (B, L, P) → (C,): the average per channel
        return v.reshape(-1, C).mean(0)

    shaped = pred.reshape(*pred.shape[:-1], P // C, C)
    return (shaped * per_channel(scale) + per_channel(mean)).reshape(pred.shape)


def reconstruction_panels(model, inputs: torch.Tensor, output, n: int, denormalize: str = "patch",
                          channels: int = 1) -> dict[str, torch.Tensor]:
    """The four panels of a grid visualizer for the first ``n`` samples, on the CPU, through the
    tokenizer's ``untokenize``: ``original`` (the inputs), ``masked`` (visible tokens, zeros
    where masked), ``reconstruction`` (every token predicted, :func:`reconstruct_tokens` with
    ``denormalize``) and ``pasted`` (predictions where masked, the original where visible), plus
    ``mask`` (n, L, 1), 1 = masked. ``channels`` as in :func:`reconstruct_tokens`."""
    untokenize = model.tokenizer.untokenize
    mask = output.mask[:n].unsqueeze(-1).float().cpu()  # (n, L, 1), 1 = masked
    targets = output.tokens.targets[:n].detach().float().cpu()
    recon = reconstruct_tokens(model, output, denormalize, channels)[:n].cpu()  # raw target space
    return {
        "original": inputs[:n].detach().float().cpu(),
        "masked": untokenize(targets * (1 - mask)),
        "reconstruction": untokenize(recon),
        "pasted": untokenize(targets * (1 - mask) + recon * mask),
        "mask": mask,
    }


def denormalize_note(model, decoder_trained: bool, denormalize: str = "patch", unit: str = "patch") -> list[str]:
    """The caption line that says how predictions were put back into input units (always one
    line when a trained decoder's predictions are shown, whatever the mode). ``unit`` names a
    token ("patch", "tubelet")."""
    check_denormalize(denormalize)
    units = unit + ("es" if unit.endswith(("ch", "sh", "s", "x")) else "s")
    if not decoder_trained:
        return []
    if type(model.target_normalizer).__name__ == "IdentityNormalizer":
        return ["predictions shown as predicted (unnormalized targets; nothing borrowed from the original)"]
    if denormalize == "patch":
        return [f"predictions de-normalized with each {unit}'s own mean/std, borrowed from the original "
                "(denormalize=patch)"]  # fmt: skip
    return [f"predictions de-normalized with one mean/std per channel for all {units}, nothing borrowed from "
            "the original (denormalize=global)"]  # fmt: skip


def denormalized_note(model, decoder_trained: bool, note: str) -> list[str]:
    """``[note]`` when the figure shows predictions of normalized targets put back into input
    units (a trained decoder and a target normalizer other than identity), else ``[]``."""
    normed = type(model.target_normalizer).__name__ != "IdentityNormalizer"
    return [note] if normed and decoder_trained else []


def save_figure(fig, path: str | Path, title_lines: Sequence[str], fontsize: float = 9, dpi: int = 100) -> str:
    """Title ``fig`` with ``title_lines``, lay it out, write it to ``path`` (parent folders
    created), close it; returns the path as a string. The last step of every visualizer."""
    import textwrap

    import matplotlib.pyplot as plt

    # wrap to the figure's width (about 0.55 em per character), so narrow figures keep the whole caption
    width = max(20, int(fig.get_figwidth() * 72 / (fontsize * 0.55)))
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in title_lines), fontsize=fontsize)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return str(path)
