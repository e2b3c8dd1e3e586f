"""Reproducible masks during training.

``SeededMasker`` wraps a model's masker for the duration of training. Before each forward the
trainer hands it one seed per sample (``mode="sample"``: each sample is masked on its own with a
generator seeded from ``(seed, epoch, position)``, so masks do not depend on the number of
processes, on accumulation or on resumption) or one seed per micro-batch (``mode="batch"``:
one masker call, cheaper on GPUs, reproducible for a fixed process count and batch layout).
Without seeds (evaluation, visualization) it calls the wrapped masker unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from maeflow.interfaces import MaskInfo, Tokens


def _slice_tokens(tokens: Tokens, i: int) -> Tokens:
    B = tokens.embeddings.shape[0]

    def cut(x):
        return x[i : i + 1] if isinstance(x, torch.Tensor) and x.ndim and x.shape[0] == B else x

    return replace(tokens, embeddings=cut(tokens.embeddings), positions=cut(tokens.positions),
                   targets=cut(tokens.targets))  # fmt: skip


class SeededMasker:
    def __init__(self, masker, mode: str = "sample"):
        if mode not in ("sample", "batch"):
            raise ValueError(f"mask seeding mode must be 'sample' or 'batch', got {mode!r}")
        self.masker = masker
        self.mode = mode
        self.seeds: list[int] | None = None

    def __call__(self, tokens: Tokens, ratio: float, noise=None, generator=None) -> MaskInfo:
        seeds, self.seeds = self.seeds, None  # one forward per set of seeds
        if seeds is None or noise is not None:
            return self.masker(tokens, ratio, noise=noise, generator=generator)
        device = tokens.embeddings.device
        if self.mode == "batch":
            g = torch.Generator(device=device).manual_seed(seeds[0])
            return self.masker(tokens, ratio, generator=g)
        if len(seeds) != tokens.embeddings.shape[0]:
            raise ValueError(f"got {len(seeds)} mask seeds for a batch of {tokens.embeddings.shape[0]}")
        parts = []
        for i, s in enumerate(seeds):
            g = torch.Generator(device=device).manual_seed(s)
            parts.append(self.masker(_slice_tokens(tokens, i), ratio, generator=g))
        return MaskInfo(
            ids_keep=torch.cat([p.ids_keep for p in parts]),
            ids_restore=torch.cat([p.ids_restore for p in parts]),
            mask=torch.cat([p.mask for p in parts]),
        )
