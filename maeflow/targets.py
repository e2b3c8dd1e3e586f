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
