"""Pre-norm transformer block: attention → MLP → block.

Parameter names follow the ViT layout used by MAE and timm (``norm1``, ``attn.qkv``,
``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``) so checkpoints map one-to-one. The MLP is
timm's (:class:`timm.layers.Mlp`: fc1 → GELU → fc2; its dropouts are off). Stochastic depth is
not timm's ``DropPath``: timm scales the kept mask before multiplying, ``x · (m / keep)``, where
maeflow computes ``(x · m) / keep`` — the same random draws but results that differ in the last
bit, and recorded Point-MAE runs (drop path 0.1) would no longer reproduce bit for bit.
"""

from __future__ import annotations

import torch
from timm.layers import Mlp
from torch import nn

from maeflow.nn.attention import attention, check_backend


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection.

    ``forward(x (B, N, D), attn_mask=None) -> (B, N, D)``; the kernel is picked by the shared
    attention switch (:mod:`maeflow.nn.attention`).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, backend: str = "auto"):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.backend = check_backend(backend)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, N, Dh)
        out = attention(q, k, v, self.backend, attn_mask)  # (B, H, N, Dh)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class DropPath(nn.Module):
    """Stochastic depth on a residual branch: in training, each sample's branch output is zeroed
    with probability ``p`` and the kept ones are scaled by ``1 / (1 - p)``; identity in eval.
    Draws come from torch's global generator (part of a maeflow checkpoint's RNG state)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)  # (B, 1, ...)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """Per-block stochastic-depth rates rising linearly from 0 to ``rate`` (the timm/Point-MAE ramp)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"drop_path_rate must be in [0, 1), got {rate}")
    return [rate * i / (depth - 1) for i in range(depth)] if depth > 1 else [0.0] * depth


class Block(nn.Module):
    """``x + drop_path(attn(norm1(x)))`` then ``x + drop_path(mlp(norm2(x)))``; ``(B, N, D) -> (B, N, D)``.
    ``drop_path`` (stochastic depth) is off by default. A block that mixes tokens differently
    (e.g. attention within windows) subclasses this and overrides :meth:`attend`."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        attention: str = "auto",
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, backend=attention)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def attend(self, h: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The attention branch on normalized tokens, ``(B, N, D) -> (B, N, D)``."""
        return self.attn(h, attn_mask)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop_path(self.attend(self.norm1(x), attn_mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def set_attention_backend(module: nn.Module, backend: str) -> int:
    """Switch every :class:`Attention` inside ``module`` to ``backend``; returns how many."""
    check_backend(backend)
    count = 0
    for m in module.modules():
        if isinstance(m, Attention):
            m.backend = backend
            count += 1
    return count
