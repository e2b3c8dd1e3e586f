"""Chamfer-L2 between predicted and true point groups, in pure PyTorch."""

from __future__ import annotations

import torch


def pairwise_sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances: ``a`` (M, n, 3), ``b`` (M, m, 3) → (M, n, m).

    Differences are formed explicitly (not ``|a|² + |b|² − 2ab``) so identical sets give
    exactly zero and small groups stay accurate; groups are small (k ≈ 32), so this is cheap.
    """
    return (a.unsqueeze(2) - b.unsqueeze(1)).pow(2).sum(-1)


def chamfer_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Chamfer-L2 of sets ``pred`` (M, n, 3) and ``target`` (M, m, 3) (Point-MAE's ``cdl2``):
    the mean over all predicted points of the squared distance to the nearest true point, plus
    the same from the true points to the predictions. Symmetric, zero for identical sets, blind
    to the order of points within a set. Returns an fp32 scalar."""
    d = pairwise_sq_dist(pred.float(), target.float())  # (M, n, m)
    return d.min(dim=2).values.mean() + d.min(dim=1).values.mean()


class ChamferL2Loss:
    """``(pred (B, L, k·3), target (B, L, k·3), mask (B, L)) -> scalar``: :func:`chamfer_l2`
    over the masked groups only, each token's values read as k points of (x, y, z).
    Zero (with a gradient path) when nothing is masked."""

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape or pred.shape[-1] % 3:
            raise ValueError(
                f"Chamfer loss needs pred and target of the same shape (B, L, k·3), got "
                f"{tuple(pred.shape)} and {tuple(target.shape)}"
            )
        mask = mask.to(torch.bool)
        if not mask.any():
            return pred.float().sum() * 0.0
        p = pred[mask].reshape(-1, pred.shape[-1] // 3, 3)  # (M, k, 3), M masked groups
        t = target[mask].reshape(-1, target.shape[-1] // 3, 3)
        return chamfer_l2(p, t)
