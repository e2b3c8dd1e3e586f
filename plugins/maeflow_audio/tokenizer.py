"""Spectrograms → patch tokens, and back."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from maeflow import Tokens


def to_tf(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    t, f = size
    return int(t), int(f)


class SpectrogramTokenizer(nn.Module):
    """(B, 1, T, F) normalized spectrograms → one token per p×p patch.

    The spectrogram is a one-channel image with time as the rows and frequency as the columns,
    so the token grid is (T/p, F/p) — 64 × 8 = 512 tokens for 1024 × 128 with p = 16 — and
    tokens are in time-major order: token ``t·F' + f`` covers time patch ``t`` and frequency
    patch ``f``. This is the order Audio-MAE gets by running its patch convolution over a
    (1024, 128) input and flattening, and its 2-D sin-cos table is laid over the same (64, 8)
    grid (frequency index in the first half of the channels, time index in the second), so
    Audio-MAE checkpoints map one-to-one. ``Tokens.layout`` is ``(T', F')``.

    Targets are the raw patch values, (B, L, p·p) in (time, frequency) order within a patch.
    """

    def __init__(self, input_size: int | tuple[int, int], patch_size: int, embed_dim: int):
        super().__init__()
        self.input_size = to_tf(input_size)
        self.patch_size = int(patch_size)
        self.embed_dim = int(embed_dim)
        T, F = self.input_size
        p = self.patch_size
        if p <= 0 or T % p or F % p:
            raise ValueError(f"spectrogram size {T}x{F} (frames x mel bins) is not divisible by the patch size {p}")
        self.grid = (T // p, F // p)
        self.num_tokens = self.grid[0] * self.grid[1]
        self.target_dim = p * p
        self.proj = nn.Conv2d(1, self.embed_dim, kernel_size=p, stride=p)

    def init_weights(self) -> None:
        # xavier over the flattened patch, as for image MAE
        w = self.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))

    def check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 1:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected spectrograms shaped (B, 1, T, F), got {shape}")
        T, F = x.shape[2:]
        if (T, F) != self.input_size:
            raise ValueError(
                f"model was built for {self.input_size[0]} frames x {self.input_size[1]} mel bins, got {T}x{F} "
                f"(create it with input_size=({T}, {F}), or set the front end's target_frames/num_mel_bins)"
            )

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, F) → (B, L, p·p)."""
        p = self.patch_size
        return rearrange(x, "b 1 (t pt) (f pf) -> b (t f) (pt pf)", pt=p, pf=p)

    def untokenize(self, values: torch.Tensor) -> torch.Tensor:
        """(B, L, p·p) → (B, 1, T, F)."""
        p = self.patch_size
        return rearrange(values, "b (t f) (pt pf) -> b 1 (t pt) (f pf)", f=self.grid[1], pt=p, pf=p)

    def forward(self, x: torch.Tensor) -> Tokens:
        self.check(x)
        emb = self.proj(x).flatten(2).transpose(1, 2)  # (B, L, D), time-major
        return Tokens(embeddings=emb, positions=None, targets=self.patchify(x), layout=self.grid)

    def example_inputs(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(batch_size, 1, *self.input_size, generator=generator)
