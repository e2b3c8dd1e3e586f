"""Point groups in pure PyTorch: unit-sphere normalization, farthest-point sampling, kNN.

No custom CUDA extension: everything is batched tensor code, so it runs on CPU and GPU alike.
Shapes: ``B`` clouds, ``N`` points each, ``G`` groups (centers), ``k`` points per group.
"""

from __future__ import annotations

from typing import Literal

import torch

FPSStart = Literal["first", "random"]


def check_points(points: torch.Tensor, min_points: int = 1, what: str = "points") -> None:
    """Raise ``ValueError`` unless ``points`` is a finite (B, N, C≥3) tensor with N ≥ ``min_points``."""
    if not isinstance(points, torch.Tensor) or points.ndim != 3 or points.shape[-1] < 3:
        shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise ValueError(f"expected {what} shaped (B, N, 3) (or (B, N, 3 + features)), got {shape}")
    if points.shape[1] < min_points:
        raise ValueError(f"{what} have {points.shape[1]} points per cloud, at least {min_points} are needed")
    if not torch.isfinite(points).all():
        raise ValueError(f"{what} contain NaN or inf values")


def normalize_unit_sphere(points: torch.Tensor) -> torch.Tensor:
    """Center each cloud on its centroid and scale it so the farthest point lies on the unit sphere.

    ``points`` (..., N, 3) → (..., N, 3). Extra channels beyond xyz are not allowed here; a cloud
    whose points all coincide is only centered.
    """
    centroid = points.mean(dim=-2, keepdim=True)  # (..., 1, 3)
    centered = points - centroid
    radius = centered.norm(dim=-1).amax(dim=-1, keepdim=True).unsqueeze(-1)  # (..., 1, 1)
    return centered / radius.clamp_min(torch.finfo(points.dtype).tiny)


def farthest_point_sample(
    xyz: torch.Tensor,
    num_samples: int,
    start: FPSStart = "first",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Batched farthest-point sampling: indices (B, G) into ``xyz`` (B, N, 3).

    Starts at point 0 (``start="first"``, the pointnet2 kernel Point-MAE uses) or at a random
    point per cloud (``start="random"``, from ``generator``); then repeatedly takes the point
    farthest from everything chosen so far. Indices are distinct when the cloud has at least
    ``num_samples`` distinct points.
    """
    B, N, _ = xyz.shape
    if not 0 < num_samples <= N:
        raise ValueError(f"cannot sample {num_samples} centers from {N} points")
    xyz = xyz.float()
    idx = torch.empty(B, num_samples, dtype=torch.long, device=xyz.device)
    if start == "first":
        current = torch.zeros(B, dtype=torch.long, device=xyz.device)
    elif start == "random":
        device = generator.device if generator is not None else xyz.device
        current = torch.randint(N, (B,), generator=generator, device=device).to(xyz.device)
    else:
        raise ValueError(f"start must be 'first' or 'random', got {start!r}")
    min_dist = torch.full((B, N), float("inf"), device=xyz.device)  # squared distance to the chosen set
    batch = torch.arange(B, device=xyz.device)
    for i in range(num_samples):
        idx[:, i] = current
        chosen = xyz[batch, current].unsqueeze(1)  # (B, 1, 3)
        min_dist = torch.minimum(min_dist, (xyz - chosen).pow(2).sum(-1))  # (B, N)
        current = min_dist.argmax(dim=1)  # first index among ties, as a plain loop would pick
    return idx


def gather_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``points`` (B, N, C), ``idx`` (B, ...) → (B, ..., C)."""
    B, C = points.shape[0], points.shape[-1]
    flat = idx.reshape(B, -1)  # (B, M)
    out = torch.gather(points, 1, flat.unsqueeze(-1).expand(-1, -1, C))  # (B, M, C)
    return out.reshape(*idx.shape, C)


def knn(query: torch.Tensor, points: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, G, k) of the ``k`` points of ``points`` (B, N, 3) nearest each ``query``
    (B, G, 3), nearest first. Distances are computed exactly (no matmul shortcut), so results
    agree with a brute-force search up to ties."""
    if not 0 < k <= points.shape[1]:
        raise ValueError(f"cannot take {k} neighbours from {points.shape[1]} points")
    dist = torch.cdist(query.float(), points.float(), compute_mode="donot_use_mm_for_euclid_dist")  # (B, G, N)
    return dist.topk(k, dim=-1, largest=False, sorted=True).indices


def group_points(
    points: torch.Tensor,
    num_groups: int,
    group_size: int,
    start: FPSStart = "first",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FPS centers and their kNN groups, relative to the centers.

    ``points`` (B, N, 3 + C) (xyz first, then optional per-point features) →
    ``groups`` (B, G, k, 3 + C) with xyz minus the group's center, and ``centers`` (B, G, 3).
    Groups may overlap (Point-MAE: 64 × 32 = 2048 slots from 1024 points); a cloud needs at
    least ``max(G, k)`` points, else ``ValueError``.
    """
    check_points(points, max(num_groups, group_size))
    xyz = points[..., :3]
    centers = gather_points(xyz, farthest_point_sample(xyz, num_groups, start, generator))  # (B, G, 3)
    groups = gather_points(points, knn(centers, xyz, group_size))  # (B, G, k, 3 + C)
    rel = groups[..., :3] - centers.unsqueeze(2)
    groups = torch.cat([rel, groups[..., 3:]], dim=-1) if points.shape[-1] > 3 else rel
    return groups, centers
