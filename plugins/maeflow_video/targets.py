"""VideoMAE's target normalization: per tubelet and per channel."""

from __future__ import annotations

import torch


class ChannelPatchNormalizer:
    """``(x − mean) / (std + eps)`` over the t·p·p values of one channel within each token.

    Targets are (B, L, P) with the channel last inside a token (P = n·C, values ordered
    (..., channel), as :class:`~maeflow_video.tokenizer.TubeletTokenizer` makes them); the
    statistics are taken per token and per channel over the n values, with the unbiased std
    and ``eps`` added to the std (not to the variance, as image MAE does) — VideoMAE's recipe.
    Computed in fp32.

    A per-channel affine input normalization (ImageNet mean/std) cancels out here, so the
    targets are the same whether or not the clip was normalized first (up to ``eps``).
    """

    def __init__(self, channels: int = 3, eps: float = 1e-6):
        if channels <= 0:
            raise ValueError(f"channels must be positive, got {channels}")
        self.channels = int(channels)
        self.eps = eps

    def _split(self, targets: torch.Tensor) -> torch.Tensor:
        P, C = targets.shape[-1], self.channels
        if P % C:
            raise ValueError(f"target size {P} is not a multiple of the {C} channels")
        return targets.float().reshape(*targets.shape[:-1], P // C, C)  # (B, L, n, C)

    def _stats(self, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self._split(targets)
        mean = t.mean(dim=-2, keepdim=True)  # (B, L, 1, C)
        std = t.var(dim=-2, keepdim=True, unbiased=True).sqrt() + self.eps
        return mean, std

    def normalize(self, targets: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(targets)
        return ((self._split(targets) - mean) / std).reshape(targets.shape)

    def denormalize(self, values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(targets)
        return (self._split(values) * std + mean).reshape(values.shape)
