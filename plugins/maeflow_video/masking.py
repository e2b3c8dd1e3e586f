"""Video maskers: tube masking (VideoMAE) and random spatiotemporal masking.

Both use VideoMAE's rounding by default: ``int(ratio · n)`` tokens are masked and the rest kept
(``maeflow.num_visible(n, ratio, rounding="mask")``). At 16×224², tubelet 2×16×16 and ratio
0.9, tube masking masks ``int(0.9 · 196) = 176`` of the 196 patches of a frame slot, keeps 20,
and repeats that over the 8 slots: 160 of 1568 tokens visible.
"""

from __future__ import annotations

import torch

from maeflow import MaskInfo, RandomMasker, Tokens, draw_noise, mask_from_noise, num_visible


def _grid(tokens: Tokens) -> tuple[int, int]:
    """(T', H'·W') from the tokenizer's ``layout = (T', H', W')``."""
    layout = tokens.layout
    if layout is None or len(layout) != 3:
        raise ValueError(f"tube masking needs tokens with a (T', H', W') layout, got {layout!r}")
    t, h, w = layout
    L = tokens.embeddings.shape[1]
    if t * h * w != L:
        raise ValueError(f"layout {layout} does not multiply out to the {L} tokens")
    return t, h * w


class TubeMasker:
    """One random spatial mask per sample, repeated over every temporal slot.

    ``noise`` is (B, H'·W'): one value per spatial position, ranked ascending, the smallest
    ``H'·W' − int(ratio · H'·W')`` kept (``rounding="mask"``, VideoMAE) — the same position is
    then visible in every temporal slot. ``ids_keep`` lists the visible tokens in token
    order, so ``ids_keep`` is (B, T'·kept).
    """

    def __init__(self, rounding: str = "mask"):
        self.rounding = rounding

    def __call__(
        self,
        tokens: Tokens,
        ratio: float,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> MaskInfo:
        T, S = _grid(tokens)
        B, L = tokens.embeddings.shape[:2]
        device = tokens.embeddings.device
        keep = num_visible(S, ratio, self.rounding)
        noise = draw_noise((B, S), device, noise, generator)
        spatial = mask_from_noise(noise, keep).mask  # (B, S), True = masked
        mask = spatial.unsqueeze(1).expand(B, T, S).reshape(B, L)  # (B, L), same spatial mask per slot
        # rank key: visible tokens first, each group in token order; keys are unique, so the
        # kept set is exactly the complement of ``mask``
        key = mask.long() * L + torch.arange(L, device=device)
        return mask_from_noise(key, T * keep)


class SpacetimeMasker(RandomMasker):
    """Independent random masking over all T'·H'·W' tokens (the spatiotemporal-MAE variant):
    maeflow's :class:`~maeflow.RandomMasker` with VideoMAE's rounding as the default.

    ``noise`` is (B, L), ranked ascending, smallest kept. ``rounding="mask"`` (default,
    VideoMAE's random masking: ``int(0.9 · 1568) = 1411`` masked, 157 kept) or ``"keep"``
    (MAE-style ``int(L · (1 − ratio))`` kept, 156 — what the spatiotemporal-MAE code does).
    """

    def __init__(self, rounding: str = "mask"):
        super().__init__(rounding)
