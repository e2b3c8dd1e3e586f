"""Images → patch tokens, and back."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from maeflow import Tokens


def to_hw(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


class PatchTokenizer(nn.Module):
    """(B, C, H, W) images → one token per p×p patch, in row-major (h, w) order.

    Targets are the raw patch pixels, (B, L, p·p·C) with the channel last inside a patch
    (the reference and Hugging Face order). Any channel count and non-square H×W divisible by
    the patch work; the size is fixed at construction since the positional tables are.
    """

    def __init__(self, img_size: int | tuple[int, int], patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.img_size = to_hw(img_size)
        self.patch_size = int(patch_size)
        self.in_chans = int(in_chans)
        self.embed_dim = int(embed_dim)
        H, W = self.img_size
        p = self.patch_size
        if p <= 0 or H % p or W % p:
            raise ValueError(f"image size {H}x{W} is not divisible by the patch size {p}")
        if self.in_chans <= 0:
            raise ValueError(f"in_chans must be positive, got {in_chans}")
        self.grid = (H // p, W // p)
        self.num_tokens = self.grid[0] * self.grid[1]
        self.target_dim = p * p * self.in_chans
        self.proj = nn.Conv2d(self.in_chans, self.embed_dim, kernel_size=p, stride=p)

    def init_weights(self) -> None:
        # as a linear layer over the flattened patch (the reference's choice)
        w = self.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))

    def check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected images shaped (B, C, H, W), got {shape}")
        _, C, H, W = x.shape
        p = self.patch_size
        if C != self.in_chans:
            raise ValueError(f"expected {self.in_chans} channels, got {C} (create the model with in_chans={C})")
        if H % p or W % p:
            raise ValueError(f"input size {H}x{W} is not divisible by the patch size {p}")
        if (H, W) != self.img_size:
            raise ValueError(
                f"model was built for {self.img_size[0]}x{self.img_size[1]} inputs, got {H}x{W} "
                f"(create it with img_size=({H}, {W}))"
            )

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, L, p·p·C)."""
        p = self.patch_size
        return rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)

    def untokenize(self, values: torch.Tensor) -> torch.Tensor:
        """(B, L, p·p·C) → (B, C, H, W)."""
        p = self.patch_size
        return rearrange(values, "b (h w) (p1 p2 c) -> b c (h p1) (w p2)", w=self.grid[1], p1=p, p2=p)

    def forward(self, x: torch.Tensor) -> Tokens:
        self.check(x)
        emb = self.proj(x).flatten(2).transpose(1, 2)  # (B, L, D)
        return Tokens(embeddings=emb, positions=None, targets=self.patchify(x), layout=self.grid)

    def example_inputs(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(batch_size, self.in_chans, *self.img_size, generator=generator)
