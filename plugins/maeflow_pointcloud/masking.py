"""Block masking of point groups: hide the groups nearest a random seed group."""

from __future__ import annotations

import torch

from maeflow import MaskInfo, Tokens, draw_noise, mask_from_noise, num_visible
from maeflow.masking import Rounding


class BlockMasker:
    """Masks one contiguous region per sample: the ``int(ratio · L)`` tokens whose positions
    are nearest a seed token's position (the seed included), as Point-MAE's ``block`` mask type.

    Needs ``Tokens.positions`` (B, L, d) (group centers). ``noise`` (B, L) picks the seed
    explicitly: the token with the smallest noise in each row (so the same ``noise`` tensor that
    drives random masking also drives this one); without it the seed is drawn uniformly from
    ``generator``. Every sample masks the same number of tokens; the visible ones go to the
    encoder farthest first. ``rounding`` as in :func:`maeflow.num_visible` (``"mask"``: Point-MAE).
    """

    def __init__(self, rounding: Rounding = "mask"):
        self.rounding = rounding

    def __call__(
        self,
        tokens: Tokens,
        ratio: float,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> MaskInfo:
        pos = tokens.positions
        if pos is None or pos.ndim != 3:
            raise ValueError("block masking needs token positions shaped (B, L, d), e.g. group centers")
        B, L = tokens.embeddings.shape[:2]
        if pos.shape[:2] != (B, L):
            raise ValueError(f"positions {tuple(pos.shape)} do not match {L} tokens in a batch of {B}")
        keep = num_visible(L, ratio, self.rounding)
        seed = draw_noise((B, L), pos.device, noise, generator).argmin(dim=1)  # (B,)
        seed_pos = pos[torch.arange(B, device=pos.device), seed].unsqueeze(1)  # (B, 1, d)
        dist = (pos.float() - seed_pos.float()).norm(dim=-1)  # (B, L)
        dist[torch.arange(B, device=pos.device), seed] = -1.0  # the seed is always masked first
        # keep the smallest "noise" = the largest distance: the nearest int(ratio·L) are masked
        return mask_from_noise(-dist, keep)
