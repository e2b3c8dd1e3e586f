"""The parts of the MAE recipe, as interfaces.

Shapes are stated once, here. ``B`` batch, ``L`` tokens per sample, ``Lv`` visible tokens,
``D`` encoder width, ``P`` target values per token.

Data flows one way (see docs/design.md)::

    raw batch ─Tokenizer→ Tokens ─Masker→ MaskInfo ─Encoder(visible)→ latent
    ─Decoder(latent + mask tokens)→ pred;  TargetNormalizer(Tokens.targets) → target
    Loss(pred, target, MaskInfo.mask) → loss
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch


@dataclass
class Tokens:
    """What a tokenizer hands on.

    - ``embeddings`` (B, L, D): token embeddings at encoder width, without positions;
    - ``positions``: what positional embeddings need — ``None`` for a fixed grid table, or
      e.g. point-group centers (B, L, 3);
    - ``targets`` (B, L, P): raw reconstruction targets per token;
    - ``layout``: the token grid (e.g. ``(H', W')`` or ``(T', H', W')``) in row-major token
      order, or ``None`` when tokens have no grid (point groups).
    """

    embeddings: torch.Tensor
    positions: torch.Tensor | None
    targets: torch.Tensor
    layout: tuple[int, ...] | None = None


@dataclass
class MaskInfo:
    """Which tokens the encoder sees.

    - ``ids_keep`` (B, Lv): indices of visible tokens, in the order the encoder sees them;
    - ``ids_restore`` (B, L): ``ids_restore[b, i]`` is the slot of token ``i`` in
      ``[visible..., masked...]`` order, i.e. the inverse of the shuffle;
    - ``mask`` (B, L) bool: True = masked (removed), in original token order.
    Every sample keeps the same number of tokens.
    """

    ids_keep: torch.Tensor
    ids_restore: torch.Tensor
    mask: torch.Tensor

    @property
    def num_visible(self) -> int:
        return self.ids_keep.shape[1]


@dataclass
class MAEOutput:
    """Result of ``MaskedAutoencoder.forward``.

    ``loss`` scalar (fp32); ``pred`` (B, L, P) in normalized-target space; ``target`` (B, L, P)
    normalized targets; ``mask`` (B, L) bool, True = masked; ``latent`` (B, [1+]Lv, D) encoder
    output; ``tokens`` and ``mask_info`` as produced on the way.
    """

    loss: torch.Tensor
    pred: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    latent: torch.Tensor
    mask_info: MaskInfo
    tokens: Tokens


@runtime_checkable
class Tokenizer(Protocol):
    """Raw modality batch → :class:`Tokens`. An ``nn.Module``.

    Attributes: ``embed_dim`` (D), ``num_tokens`` (L), ``target_dim`` (P).
    ``example_inputs(batch_size)`` makes a random valid input batch (for tests and benchmarks);
    ``untokenize(targets (B, L, P))`` maps per-token values back to the raw layout where one
    exists. Invalid input raises ``ValueError`` naming the problem.
    """

    embed_dim: int
    num_tokens: int
    target_dim: int

    def __call__(self, inputs: torch.Tensor) -> Tokens: ...

    def example_inputs(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def untokenize(self, values: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Masker(Protocol):
    """``(tokens, ratio, noise | generator) -> MaskInfo``.

    ``noise`` (whose shape the masker documents; (B, L) for random masking) makes the mask
    explicit: tokens are ranked by ascending noise and the smallest are kept. Without it the
    masker draws its noise with :func:`maeflow.draw_noise` from ``generator``: one generator for
    the batch, or a sequence of one per sample (row ``i`` drawn from generator ``i``; the trainer
    passes these, seeded per sample, so masks do not depend on batch composition).
    """

    def __call__(
        self,
        tokens: Tokens,
        ratio: float,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
    ) -> MaskInfo: ...


@runtime_checkable
class TargetNormalizer(Protocol):
    """Per-token target normalization: ``normalize(targets (B, L, P)) -> (B, L, P)``;
    ``denormalize(values, targets) -> values`` undoes it with the statistics of ``targets``
    (used to show predictions in raw space)."""

    def normalize(self, targets: torch.Tensor) -> torch.Tensor: ...

    def denormalize(self, values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Loss(Protocol):
    """``(pred (B, L, P), target (B, L, P), mask (B, L) bool) -> scalar``, over masked tokens."""

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class PositionalEmbedding(Protocol):
    """``positions`` (from :class:`Tokens`) → embeddings ``(1 or B, L, width)``."""

    def __call__(self, positions: torch.Tensor | None) -> torch.Tensor: ...


@runtime_checkable
class Visualizer(Protocol):
    """Writes a figure of reconstructions: ``(model, inputs, output, path, **options) -> path``."""

    def __call__(self, model: Any, inputs: torch.Tensor, output: MAEOutput, path: str, **options: Any) -> str: ...
