"""Fixed sin-cos positional tables in 1-D, 2-D and 3-D, and the module that holds one.

Conventions (those of MAE): for a 1-D position ``p`` and width ``D``, the first half of the
channels is ``sin(p·ω)`` and the second half ``cos(p·ω)`` with ``ω_i = 1 / 10000^(2i/D)``.
In 2-D, tokens are in row-major (h, w) order; the first half of the channels encodes the
column coordinate ``w`` and the second half the row coordinate ``h``, as the reference code
does. A 3-D table puts ``t`` in its first channels and a 2-D (h, w) table in the rest.
"""

from __future__ import annotations

import torch
from torch import nn


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """``positions`` (M,) → table (M, dim); ``dim`` must be even."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding width must be even, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega  # (dim/2,)
    out = positions.reshape(-1).to(torch.float64)[:, None] * omega[None, :]  # (M, dim/2)
    return torch.cat([out.sin(), out.cos()], dim=1).float()


def sincos_2d(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """Table (H·W, dim) for an (H, W) grid in row-major token order."""
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding width must be divisible by 4, got {dim}")
    h, w = grid
    gh, gw = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    # the reference puts the width coordinate in the first half of the channels
    return torch.cat([sincos_1d(dim // 2, gw), sincos_1d(dim // 2, gh)], dim=1)


def sincos_3d(dim: int, grid: tuple[int, int, int], temporal_dim: int | None = None) -> torch.Tensor:
    """Table (T·H·W, dim) for a (T, H, W) grid in row-major order.

    ``temporal_dim`` channels (default a quarter of ``dim``, rounded to even) encode ``t``; the
    rest is a 2-D table over (H, W).
    """
    t, h, w = grid
    if temporal_dim is None:
        temporal_dim = (dim // 4) // 2 * 2
    spatial_dim = dim - temporal_dim
    spatial = sincos_2d(spatial_dim, (h, w))  # (H·W, Ds)
    temporal = sincos_1d(temporal_dim, torch.arange(t))  # (T, Dt)
    spatial = spatial[None].expand(t, -1, -1)
    temporal = temporal[:, None].expand(-1, h * w, -1)
    return torch.cat([temporal, spatial], dim=-1).reshape(t * h * w, dim)


class FixedPosEmbed(nn.Module):
    """A fixed (not learned) positional table, returned as ``(1, L, D)``.

    The table is a non-persistent buffer: it is a function of the grid, so checkpoints need
    not carry it (foreign layouts that do carry it are checked against it on load).
    """

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.register_buffer("table", table[None].clone(), persistent=False)  # (1, L, D)

    def forward(self, positions: torch.Tensor | None = None) -> torch.Tensor:
        return self.table
