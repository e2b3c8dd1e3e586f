"""Video clips → tubelet tokens, and back; the positional tables video models use."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from maeflow import Tokens, sincos_1d, sincos_3d


def to_hw(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


POS_EMBEDS = ("sincos_3d", "sincos_1d")


def videomae_sincos_1d(dim: int, num_tokens: int) -> torch.Tensor:
    """VideoMAE's fixed table (L, dim) over the flattened (t, h, w) token index.

    VideoMAE interleaves the channels — column ``2i`` is ``sin(p·ω_i)``, column ``2i+1`` is
    ``cos(p·ω_i)``, ``ω_i = 1/10000^(2i/dim)`` — where :func:`maeflow.sincos_1d` puts all sines
    first. Same frequencies, other channel order; published VideoMAE weights were trained
    with the interleaved one (their files do not store the table), so that is what we build.
    """
    table = sincos_1d(dim, torch.arange(num_tokens))  # (L, dim): [sin_0..sin_k, cos_0..cos_k]
    half = dim // 2
    order = torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).reshape(-1)
    return table[:, order]  # (L, dim): sin_0, cos_0, sin_1, cos_1, ...


def video_pos_table(kind: str, dim: int, layout: tuple[int, int, int]) -> torch.Tensor:
    """Fixed positional table (T'·H'·W', dim) for a token grid ``layout = (T', H', W')``.

    ``"sincos_3d"`` (default): separate time and space coordinates (:func:`maeflow.sincos_3d`);
    ``"sincos_1d"``: VideoMAE's table over the flattened token index.
    """
    if kind == "sincos_3d":
        return sincos_3d(dim, layout)
    if kind == "sincos_1d":
        t, h, w = layout
        return videomae_sincos_1d(dim, t * h * w)
    raise ValueError(f"pos_embed must be one of {POS_EMBEDS}, got {kind!r}")


class TubeletTokenizer(nn.Module):
    """(B, C, T, H, W) clips → one token per t×p×p tubelet (VideoMAE: 2×16×16).

    Tokens are in row-major (t, h, w) order over the grid ``layout = (T/t, H/p, W/p)``.
    Embedding is a 3-D convolution with kernel = stride = (t, p, p). Targets are the raw
    tubelet values, (B, L, t·p·p·C), ordered (time, row, column, channel) — the channel last,
    as in the image plugin and in VideoMAE's ``(p0 p1 p2 c)`` rearrangement. Clip length, size
    and channels are fixed at construction since the positional tables are.
    """

    def __init__(
        self,
        num_frames: int,
        img_size: int | tuple[int, int],
        tubelet_size: int,
        patch_size: int,
        in_chans: int,
        embed_dim: int,
    ):
        super().__init__()
        self.num_frames = int(num_frames)
        self.img_size = to_hw(img_size)
        self.tubelet_size = int(tubelet_size)
        self.patch_size = int(patch_size)
        self.in_chans = int(in_chans)
        self.embed_dim = int(embed_dim)
        T, (H, W), t, p = self.num_frames, self.img_size, self.tubelet_size, self.patch_size
        if t <= 0 or T <= 0 or T % t:
            raise ValueError(f"num_frames {T} is not divisible by the tubelet size {t}")
        if p <= 0 or H % p or W % p:
            raise ValueError(f"frame size {H}x{W} is not divisible by the patch size {p}")
        if self.in_chans <= 0:
            raise ValueError(f"in_chans must be positive, got {in_chans}")
        self.layout = (T // t, H // p, W // p)
        self.num_tokens = self.layout[0] * self.layout[1] * self.layout[2]
        self.target_dim = t * p * p * self.in_chans
        self.proj = nn.Conv3d(self.in_chans, self.embed_dim, kernel_size=(t, p, p), stride=(t, p, p))

    @property
    def spatial_tokens(self) -> int:
        """Tokens per temporal slot, H'·W'."""
        return self.layout[1] * self.layout[2]

    def init_weights(self) -> None:
        # as a linear layer over the flattened tubelet, like the image plugin's patch embedding
        w = self.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))

    def check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 5:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected video clips shaped (B, C, T, H, W), got {shape}")
        _, C, T, H, W = x.shape
        t, p = self.tubelet_size, self.patch_size
        if C != self.in_chans:
            raise ValueError(f"expected {self.in_chans} channels, got {C} (create the model with in_chans={C})")
        if T % t:
            raise ValueError(f"{T} frames are not divisible by the tubelet size {t}")
        if H % p or W % p:
            raise ValueError(f"frame size {H}x{W} is not divisible by the patch size {p}")
        if T != self.num_frames or (H, W) != self.img_size:
            raise ValueError(
                f"model was built for {self.num_frames} frames of {self.img_size[0]}x{self.img_size[1]}, "
                f"got {T} frames of {H}x{W} (create it with num_frames={T}, img_size=({H}, {W}))"
            )

    def tubeletify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → (B, L, t·p·p·C), values ordered (time, row, column, channel)."""
        t, p = self.tubelet_size, self.patch_size
        return rearrange(x, "b c (t pt) (h ph) (w pw) -> b (t h w) (pt ph pw c)", pt=t, ph=p, pw=p)

    def untokenize(self, values: torch.Tensor) -> torch.Tensor:
        """(B, L, t·p·p·C) → (B, C, T, H, W)."""
        _, h, w = self.layout
        t, p = self.tubelet_size, self.patch_size
        return rearrange(values, "b (t h w) (pt ph pw c) -> b c (t pt) (h ph) (w pw)", h=h, w=w, pt=t, ph=p, pw=p)

    def forward(self, x: torch.Tensor) -> Tokens:
        self.check(x)
        emb = self.proj(x).flatten(2).transpose(1, 2)  # (B, D, T', H', W') → (B, L, D), (t, h, w) order
        return Tokens(embeddings=emb, positions=None, targets=self.tubeletify(x), layout=self.layout)

    def example_inputs(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(batch_size, self.in_chans, self.num_frames, *self.img_size, generator=generator)
