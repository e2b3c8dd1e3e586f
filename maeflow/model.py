"""Encoder, decoder and the :class:`MaskedAutoencoder` that composes the parts.

The model file reads top to bottom: helpers → encoder → decoder → the composite.
Nothing here knows about a modality; tokenizers, maskers, normalizers, losses and positional
embeddings come in as objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from maeflow.interfaces import MAEOutput, MaskInfo, Tokens
from maeflow.masking import check_ratio
from maeflow.nn.blocks import Block, drop_path_rates


def gather_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``x`` (B, L, D), ``ids`` (B, M) → (B, M, D)."""
    return torch.gather(x, 1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class Encoder(nn.Module):
    """A ViT over the visible tokens.

    ``pos_embed`` maps ``Tokens.positions`` to ``(1 or B, L, D)``; it is added once at the input
    (MAE) or before every block (``pos_every_block=True``, Point-MAE). With ``cls_token`` a
    learned token with a zero position is prepended; the output is then ``(B, 1 + Lv, D)``.
    ``drop_path_rate``: stochastic depth, rising linearly over the blocks from 0 to this rate
    (off by default; Point-MAE uses 0.1).
    """

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        pos_embed: nn.Module,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        cls_token: bool = True,
        pos_every_block: bool = False,
        attention: str = "auto",
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.pos_embed = pos_embed
        self.pos_every_block = pos_every_block
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if cls_token else None
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, norm_eps, attention, drop_path=r)
            for r in drop_path_rates(drop_path_rate, depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)

    @property
    def num_prefix_tokens(self) -> int:
        return 0 if self.cls_token is None else 1

    def forward(self, tokens: Tokens, ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        x = tokens.embeddings  # (B, L, D)
        B = x.shape[0]
        pos = self.pos_embed(tokens.positions).to(x.dtype).expand(B, -1, -1)  # (B, L, D)
        if ids_keep is not None:
            x, pos = gather_tokens(x, ids_keep), gather_tokens(pos, ids_keep)  # (B, Lv, D)
        if not self.pos_every_block:
            x = x + pos
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(B, -1, -1).to(x.dtype), x], dim=1)
            if self.pos_every_block:  # only then is pos used again (no copy otherwise)
                pos = torch.cat([pos.new_zeros(B, 1, pos.shape[-1]), pos], dim=1)
        for block in self.blocks:
            x = block(x + pos if self.pos_every_block else x)
        return self.norm(x)  # (B, [1+]Lv, D)


class Decoder(nn.Module):
    """Fills every position: visible latents plus a learned mask token, then a light ViT.

    ``forward(latent (B, [1+]Lv, D_enc), mask_info, tokens) -> pred (B, L, out_dim)``.
    ``block_factory(i)`` may supply custom blocks (e.g. windowed attention) with the
    ``block(x (B, N, D)) -> (B, N, D)`` signature; by default plain :class:`Block` s.
    ``project_latent=False`` feeds the latents in as they are instead of through a linear
    projection (only when ``in_dim == embed_dim``; Point-MAE's decoder has no projection).
    ``drop_path_rate``: stochastic depth over the default blocks, as in :class:`Encoder`.
    """

    def __init__(
        self,
        in_dim: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        out_dim: int,
        pos_embed: nn.Module,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        num_prefix_tokens: int = 1,
        pos_every_block: bool = False,
        attention: str = "auto",
        block_factory: Callable[[int], nn.Module] | None = None,
        project_latent: bool = True,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        if not project_latent and in_dim != embed_dim:
            raise ValueError(f"project_latent=False needs equal widths, got encoder {in_dim} vs decoder {embed_dim}")
        self.embed_dim = embed_dim
        self.num_prefix_tokens = num_prefix_tokens
        self.pos_every_block = pos_every_block
        self.embed = nn.Linear(in_dim, embed_dim) if project_latent else nn.Identity()
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = pos_embed
        if block_factory is None:
            rates = drop_path_rates(drop_path_rate, depth)

            def block_factory(i: int) -> nn.Module:
                return Block(embed_dim, num_heads, mlp_ratio, qkv_bias, norm_eps, attention, drop_path=rates[i])

        elif drop_path_rate:
            raise ValueError("drop_path_rate applies to the default blocks; pass it to your block_factory instead")

        self.blocks = nn.ModuleList(block_factory(i) for i in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.pred = nn.Linear(embed_dim, out_dim)

    def forward(self, latent: torch.Tensor, mask_info: MaskInfo, tokens: Tokens) -> torch.Tensor:
        x = self.embed(latent)  # (B, n + Lv, Dd)
        n = self.num_prefix_tokens
        prefix, x = x[:, :n], x[:, n:]
        B, Lv, Dd = x.shape
        L = mask_info.ids_restore.shape[1]
        x = torch.cat([x, self.mask_token.to(x.dtype).expand(B, L - Lv, -1)], dim=1)  # (B, L, Dd)
        x = gather_tokens(x, mask_info.ids_restore)  # original token order
        pos = self.pos_embed(tokens.positions).to(x.dtype).expand(B, -1, -1)  # (B, L, Dd)
        if not self.pos_every_block:
            x = x + pos
        if n:
            x = torch.cat([prefix, x], dim=1)
            if self.pos_every_block:  # only then is pos used again (no copy otherwise)
                pos = torch.cat([pos.new_zeros(B, n, Dd), pos], dim=1)
        for block in self.blocks:
            x = block(x + pos if self.pos_every_block else x)
        x = self.pred(self.norm(x))
        return x[:, n:]  # (B, L, out_dim)


class MaskedAutoencoder(nn.Module):
    """Tokenize → mask → encode visible → decode all → loss on masked targets.

    ``forward(inputs, noise=None, generator=None) -> MAEOutput``. ``noise`` is handed to the
    masker (for random masking a (B, L) tensor; argsort ascending, small = kept); without it the
    masker draws from ``generator``: one ``torch.Generator``, or one per sample (row ``i`` of the
    noise from generator ``i``, :func:`maeflow.draw_noise`), or the global RNG when None.
    """

    def __init__(
        self,
        tokenizer: nn.Module,
        masker: Callable[..., MaskInfo],
        encoder: Encoder,
        decoder: Decoder,
        target_normalizer: Any,
        loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
        mask_ratio: float = 0.75,
        modality: str = "generic",
    ):
        super().__init__()
        self.tokenizer = tokenizer
        self.masker = masker
        self.encoder = encoder
        self.decoder = decoder
        self.target_normalizer = target_normalizer
        self.loss_fn = loss
        self.mask_ratio = check_ratio(mask_ratio)
        self.modality = modality
        # set by maeflow.create_model: the preset name and the arguments it was built with
        self.model_name: str | None = None
        self.model_args: dict[str, Any] = {}

    def forward(
        self,
        inputs: torch.Tensor,
        noise: torch.Tensor | None = None,
        mask_ratio: float | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
    ) -> MAEOutput:
        ratio = self.mask_ratio if mask_ratio is None else check_ratio(mask_ratio)
        tokens = self.tokenizer(inputs)
        mask_info = self.masker(tokens, ratio, noise=noise, generator=generator)
        latent = self.encoder(tokens, mask_info.ids_keep)  # (B, [1+]Lv, D)
        pred = self.decoder(latent, mask_info, tokens)  # (B, L, P)
        target = self.target_normalizer.normalize(tokens.targets)  # (B, L, P), fp32
        loss = self.loss_fn(pred, target, mask_info.mask)
        return MAEOutput(
            loss=loss, pred=pred, target=target, mask=mask_info.mask, latent=latent,
            mask_info=mask_info, tokens=tokens,
        )  # fmt: skip

    @torch.no_grad()
    def reconstruct(self, output: MAEOutput) -> torch.Tensor:
        """Predictions in raw target space (B, L, P), de-normalized with each token's own
        target statistics (what the reference visualizations show)."""
        return self.target_normalizer.denormalize(output.pred, output.tokens.targets)

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """All tokens through the encoder, nothing masked: (B, [1+]L, D)."""
        return self.encoder(self.tokenizer(inputs), None)

    def forward_features(self, inputs: torch.Tensor, pool: str = "auto") -> torch.Tensor:
        """Pooled encoder features (B, D) for probes: the cls token when the encoder has one
        (``pool="auto"``/``"cls"``), else the mean over tokens (``"mean"``)."""
        x = self.encode(inputs)
        n = self.encoder.num_prefix_tokens
        if pool == "cls" or (pool == "auto" and n):
            if not n:
                raise ValueError("pool='cls' needs an encoder with a cls token")
            return x[:, 0]
        if pool in ("mean", "auto"):
            return x[:, n:].mean(dim=1)
        raise ValueError(f"pool must be 'auto', 'cls' or 'mean', got {pool!r}")

    def init_weights(self, scheme: str = "xavier") -> None:
        """Reference initialization: linear layers xavier-uniform (``"xavier"``, MAE) or
        truncated normal 0.02 (``"trunc_normal"``, Point-MAE), zero biases, LayerNorm 1/0,
        cls and mask tokens normal(0.02). A tokenizer may refine its own parts through an
        ``init_weights()`` method, called last."""

        def init(m: nn.Module) -> None:
            if isinstance(m, nn.Linear):
                if scheme == "xavier":
                    nn.init.xavier_uniform_(m.weight)
                elif scheme == "trunc_normal":
                    nn.init.trunc_normal_(m.weight, std=0.02)
                else:
                    raise ValueError(f"unknown init scheme {scheme!r}")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

        self.apply(init)
        if self.encoder.cls_token is not None:
            nn.init.normal_(self.encoder.cls_token, std=0.02)
        nn.init.normal_(self.decoder.mask_token, std=0.02)
        if hasattr(self.tokenizer, "init_weights"):
            self.tokenizer.init_weights()

    def no_weight_decay_names(self) -> set[str]:
        """Parameter names that take no weight decay: biases, norms, tokens, positional tables."""
        names = set()
        for name, p in self.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if p.ndim <= 1 or leaf in ("cls_token", "mask_token") or "pos_embed" in name:
                names.add(name)
        return names
