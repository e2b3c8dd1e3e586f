"""Local attention in (shifted) windows over the (T', F') token grid, for the decoder.

Audio-MAE's published decoder attends within 4 × 4 windows of its 64 × 8 token grid, shifting
the windows every other block (Swin-style) so that information crosses window borders. Here a
:class:`WindowedBlock` partitions the grid into windows and runs maeflow's shared
:class:`maeflow.nn.Attention` on the (B·windows, w_t·w_f, D) batch, so it takes the same
attention backends as every other block. Its parameters are named like
:class:`maeflow.nn.Block`'s (``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1``,
``mlp.fc2``), so global-decoder weights load into a windowed decoder and back.

Shifted windows: the grid is rolled by ``-shift`` before partitioning and rolled back after; as
in Swin, an attention mask keeps tokens that only became neighbours through the roll (the
wrapped-around edge) from attending to each other. The effective windows are those of a grid
partition whose borders are offset by ``shift`` (smaller windows at the edges).

Prefix tokens (the cls token the decoder carries along): Audio-MAE removes it before its local
decoder blocks; here each block lets the prefix tokens attend only among themselves and no grid
token attends to them, which leaves every grid output exactly as if the prefix were absent.
"""

from __future__ import annotations

import torch
from einops import rearrange

from maeflow.nn import Block


def _check_window(grid: tuple[int, int], window: tuple[int, int], shift: tuple[int, int]):
    """Window clipped to the grid; no shift along an axis one window covers (as Swin does)."""
    window = tuple(min(int(w), int(g)) for w, g in zip(window, grid, strict=True))
    shift = tuple(0 if w == g else int(s) for s, w, g in zip(shift, window, grid, strict=True))
    for g, w, s, axis in zip(grid, window, shift, ("time", "frequency"), strict=True):
        if w <= 0 or g % w:
            raise ValueError(f"decoder window {w} does not divide the {axis} token grid {g}")
        if not 0 <= s < w:
            raise ValueError(f"decoder window shift {s} along {axis} must be in [0, {w})")
    return window, shift


def _window_partition(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """(B, T', F', D) → (B·nW, w_t·w_f, D), windows in row-major (time, frequency) order."""
    wt, wf = window
    return rearrange(x, "b (nt wt) (nf wf) d -> (b nt nf) (wt wf) d", wt=wt, wf=wf)


def _window_merge(x: torch.Tensor, window: tuple[int, int], grid: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`_window_partition`: (B·nW, w_t·w_f, D) → (B, T', F', D)."""
    (T, F), (wt, wf) = grid, window
    return rearrange(x, "(b nt nf) (wt wf) d -> b (nt wt) (nf wf) d", nt=T // wt, nf=F // wf, wt=wt, wf=wf)


def shifted_window_mask(grid: tuple[int, int], window: tuple[int, int], shift: tuple[int, int]) -> torch.Tensor | None:
    """(nW, N, N) bool, True = may attend, for windows of the grid rolled by ``-shift``;
    ``None`` without a shift."""
    if shift == (0, 0):
        return None
    labels = torch.zeros(grid, dtype=torch.long)  # region of each rolled position
    for axis, (g, w, s) in enumerate(zip(grid, window, shift, strict=True)):
        if s == 0:
            continue
        region = torch.zeros(g, dtype=torch.long)
        region[g - w : g - s] = 1  # the last window holds two regions: [g-w, g-s) and the wrapped [g-s, g)
        region[g - s :] = 2
        labels = labels * 3 + (region[:, None] if axis == 0 else region[None, :])
    win = _window_partition(labels[None, :, :, None], window)[..., 0]  # (nW, N)
    return win[:, :, None] == win[:, None, :]


class WindowedBlock(Block):
    """Pre-norm transformer block with attention inside windows of the token grid: a
    :class:`maeflow.nn.Block` whose attention branch (:meth:`attend`) runs per window.

    ``forward(x (B, n + T'·F', D)) -> (B, n + T'·F', D)`` where ``n = num_prefix_tokens`` and
    the grid tokens are in time-major order.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        grid: tuple[int, int],
        window: tuple[int, int] = (4, 4),
        shift: tuple[int, int] = (0, 0),
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        attention: str = "auto",
        num_prefix_tokens: int = 1,
    ):
        grid = (int(grid[0]), int(grid[1]))
        window, shift = _check_window(grid, tuple(window), tuple(shift))
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias, norm_eps, attention)
        self.grid, self.window, self.shift = grid, window, shift
        self.num_prefix_tokens = num_prefix_tokens
        self.register_buffer("attn_mask", shifted_window_mask(grid, window, shift), persistent=False)

    def extra_repr(self) -> str:
        return f"grid={self.grid}, window={self.window}, shift={self.shift}"

    def _local_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized grid tokens (B, L, D) → attention output (B, L, D)."""
        B, L, D = x.shape
        T, F = self.grid
        if L != T * F:
            raise ValueError(f"windowed block built for a {T}x{F} token grid got {L} tokens")
        g = x.reshape(B, T, F, D)
        st, sf = self.shift
        if self.attn_mask is not None:
            g = torch.roll(g, shifts=(-st, -sf), dims=(1, 2))
        windows = _window_partition(g, self.window)  # (B·nW, N, D)
        mask = None
        if self.attn_mask is not None:
            mask = self.attn_mask.repeat(B, 1, 1)[:, None]  # (B·nW, 1, N, N), windows b-major
        out = _window_merge(self.attn(windows, mask), self.window, self.grid)  # (B, T', F', D)
        if self.attn_mask is not None:
            out = torch.roll(out, shifts=(st, sf), dims=(1, 2))
        return out.reshape(B, L, D)

    def attend(self, h: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Windows over the grid tokens; the prefix tokens attend among themselves."""
        if attn_mask is not None:
            raise ValueError("a windowed block makes its own attention mask")
        n = self.num_prefix_tokens
        out = self._local_attention(h[:, n:])
        return torch.cat([self.attn(h[:, :n]), out], dim=1) if n else out
