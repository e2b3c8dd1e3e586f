"""Random masking with the reference semantics, and the helpers other maskers build on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from maeflow.interfaces import MaskInfo, Tokens

Rounding = Literal["keep", "mask"]


def check_ratio(ratio: float) -> float:
    if not 0.0 <= float(ratio) < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    return float(ratio)


def num_visible(num_tokens: int, ratio: float, rounding: Rounding = "keep") -> int:
    """Tokens kept per sample.

    ``rounding="keep"`` (MAE, Audio-MAE): ``int(L · (1 − ratio))`` are kept.
    ``rounding="mask"`` (VideoMAE, Point-MAE): ``int(L · ratio)`` are masked, the rest kept.
    The two differ when ``L · ratio`` is not whole (64 · 0.6: 25 vs 26 kept).
    """
    check_ratio(ratio)
    if rounding == "keep":
        keep = int(num_tokens * (1 - ratio))
    elif rounding == "mask":
        keep = num_tokens - int(num_tokens * ratio)
    else:
        raise ValueError(f"rounding must be 'keep' or 'mask', got {rounding!r}")
    return max(keep, 1)


def mask_from_noise(noise: torch.Tensor, keep: int) -> MaskInfo:
    """Rank tokens by ascending ``noise`` (B, L) and keep the ``keep`` smallest."""
    ids_shuffle = torch.argsort(noise, dim=1)  # (B, L): small noise first = kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # (B, L)
    ids_keep = ids_shuffle[:, :keep]  # (B, Lv)
    mask = ids_restore >= keep  # (B, L), True = masked, original order
    return MaskInfo(ids_keep=ids_keep, ids_restore=ids_restore, mask=mask)


def check_noise(noise: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    if tuple(noise.shape) != tuple(shape):
        raise ValueError(f"noise must have shape {tuple(shape)}, got {tuple(noise.shape)}")
    return noise


def draw_noise(
    shape: tuple[int, ...],
    device: torch.device,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
) -> torch.Tensor:
    """The noise a masker ranks: ``noise`` checked against ``shape`` if given, else ``U[0, 1)``
    drawn from ``generator`` on the generator's own device (so a CPU generator gives the same
    masks for CPU and GPU runs), returned on ``device``.

    ``generator`` may be a sequence of one generator per sample: row ``i`` (shape ``shape[1:]``)
    is then drawn from generator ``i``, so a sample's mask does not depend on the rest of its
    batch (the trainer seeds each sample by its position in the epoch)."""
    if noise is not None:
        return check_noise(noise, shape).to(device)
    if isinstance(generator, Sequence):
        if len(generator) != shape[0]:
            raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]}")
        rows = [torch.rand((1, *shape[1:]), generator=g, device=g.device).to(device) for g in generator]
        return torch.cat(rows)
    draw_on = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=draw_on).to(device)


class RandomMasker:
    """Independent random masking per sample: ``noise ~ U[0, 1)`` of shape (B, L).

    Explicit ``noise`` (B, L) reproduces a mask exactly (and matches the MAE reference and
    Hugging Face ``ViTMAE`` given the same tensor).
    """

    def __init__(self, rounding: Rounding = "keep"):
        self.rounding = rounding

    def __call__(
        self,
        tokens: Tokens,
        ratio: float,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
    ) -> MaskInfo:
        B, L = tokens.embeddings.shape[:2]
        keep = num_visible(L, ratio, self.rounding)
        noise = draw_noise((B, L), tokens.embeddings.device, noise, generator)
        return mask_from_noise(noise, keep)
