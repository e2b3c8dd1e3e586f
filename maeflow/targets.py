"""Target normalizers (per-token) and reconstruction losses that are not modality-specific."""

from __future__ import annotations

import torch


class PatchNormalizer:
    """MAE's per-token normalization over all P values: ``(x − mean) / sqrt(var + eps)``.

    ``var`` is the unbiased variance, as in the reference. Computed in fp32.
    """

    def __init__(self, eps: float = 1e-6):
        self.eps = eps

    def _stats(self, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = targets.float()
        mean = t.mean(dim=-1, keepdim=True)
        std = (t.var(dim=-1, keepdim=True, unbiased=True) + self.eps).sqrt()
        return mean, std

    def normalize(self, targets: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(targets)
        return (targets.float() - mean) / std

    def denormalize(self, values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(targets)
        return values.float() * std + mean


class ChannelPatchNormalizer:
    """Per-token, per-channel normalization: ``(x − mean) / (std + eps)`` over the n values
    of one channel within each token (VideoMAE's targets; any multichannel modality can use it).

    Targets are (B, L, P) with the channel last inside a token: P = n·C and the values ordered
    (..., channel), i.e. value ``i·C + c`` of a token belongs to channel ``c`` — as
    :class:`~maeflow_video.tokenizer.TubeletTokenizer` makes them (t·p·p values per channel).
    A tokenizer with another order must put the channel last before using this. The number
    of channels cannot be read from the targets, so the model builder passes ``channels``
    (default 3; the video presets pass ``cfg.in_chans``). The statistics are taken per token
    and per channel over the n values, with the unbiased std and ``eps`` added to the std (not
    to the variance, as :class:`PatchNormalizer` does) — VideoMAE's recipe. Computed in fp32.

    A per-channel affine input normalization (ImageNet mean/std) cancels out here, so the
    targets are the same whether or not the input was normalized first (up to ``eps``).
    Registered in the core as ``channel_patch_norm``.
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


class IdentityNormalizer:
    """Targets as they are."""

    def normalize(self, targets: torch.Tensor) -> torch.Tensor:
        return targets.float()

    def denormalize(self, values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return values.float()


class MaskedMSELoss:
    """Mean squared error per token, averaged over masked tokens only (fp32)."""

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        per_token = (pred.float() - target.float()).pow(2).mean(dim=-1)  # (B, L)
        m = mask.to(per_token.dtype)
        return (per_token * m).sum() / m.sum().clamp_min(1.0)
