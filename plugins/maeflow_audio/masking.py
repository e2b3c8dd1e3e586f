"""Time/frequency masking over the (T', F') token grid (Audio-MAE's 2-D masking).

Random masking (0.8 → 102 of 512 tokens visible, "keep" rounding) is maeflow's built-in
``random`` masker; this module adds the structured alternative.
"""

from __future__ import annotations

import math

import torch

from maeflow import MaskInfo, Tokens, check_ratio, draw_noise


def _grid(tokens: Tokens) -> tuple[int, int]:
    layout = tokens.layout
    L = tokens.embeddings.shape[1]
    if layout is None or len(layout) != 2 or layout[0] * layout[1] != L:
        raise ValueError(f"time/frequency masking needs a 2-D (time, frequency) token layout, got {layout}")
    return int(layout[0]), int(layout[1])


class TimeFrequencyMasker:
    """Mask whole time columns and whole frequency rows of the token grid.

    Counts, the same for every sample: ``keep_t = max(1, int(T'·(1 − time_ratio)))`` time
    positions and ``keep_f = max(1, int(F'·(1 − freq_ratio)))`` frequency positions are kept; a
    token is visible only when both its time and its frequency position are kept, so
    ``keep_t·keep_f`` tokens are visible and the rest masked (64 × 8 grid at 0.6 / 0.5:
    25·4 = 100 visible of 512).

    Ratios: set ``time_ratio`` and ``freq_ratio`` explicitly (then the model's ``mask_ratio``
    passed as ``ratio`` is not used), or leave them ``None`` to derive both from ``ratio`` as
    ``1 − sqrt(1 − ratio)``, so that about ``1 − ratio`` of the tokens stay visible.

    Explicit ``noise`` has shape (B, T' + F'): the first T' columns rank time positions, the
    last F' frequency positions (ascending; small = kept), as two independent uniform draws
    do when no noise is given. Visible tokens are handed to the encoder in grid order.
    """

    def __init__(self, time_ratio: float | None = None, freq_ratio: float | None = None):
        self.time_ratio = None if time_ratio is None else check_ratio(time_ratio)
        self.freq_ratio = None if freq_ratio is None else check_ratio(freq_ratio)

    def ratios(self, ratio: float) -> tuple[float, float]:
        derived = 1.0 - math.sqrt(1.0 - check_ratio(ratio))
        t = derived if self.time_ratio is None else self.time_ratio
        f = derived if self.freq_ratio is None else self.freq_ratio
        return t, f

    def counts(self, grid: tuple[int, int], ratio: float) -> tuple[int, int]:
        """Kept time and frequency positions for a (T', F') grid."""
        rt, rf = self.ratios(ratio)
        return max(1, int(grid[0] * (1 - rt))), max(1, int(grid[1] * (1 - rf)))

    def __call__(
        self,
        tokens: Tokens,
        ratio: float,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> MaskInfo:
        T, F = _grid(tokens)
        B, L = tokens.embeddings.shape[:2]
        device = tokens.embeddings.device
        keep_t, keep_f = self.counts((T, F), ratio)
        noise = draw_noise((B, T + F), device, noise, generator)
        # rank of each time / frequency position by its noise; the keep_* smallest are kept
        rank_t = torch.argsort(torch.argsort(noise[:, :T], dim=1), dim=1)  # (B, T)
        rank_f = torch.argsort(torch.argsort(noise[:, T:], dim=1), dim=1)  # (B, F)
        masked_t = rank_t >= keep_t
        masked_f = rank_f >= keep_f
        mask = (masked_t[:, :, None] | masked_f[:, None, :]).reshape(B, L)  # (B, L) True = masked
        # visible tokens first in grid order, then masked ones in grid order
        order = mask.long() * L + torch.arange(L, device=device)
        ids_shuffle = torch.argsort(order, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        return MaskInfo(ids_keep=ids_shuffle[:, : keep_t * keep_f], ids_restore=ids_restore, mask=mask)
