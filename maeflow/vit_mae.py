"""The ViT masked autoencoder that every built-in modality builds: a shared config and builder.

A modality plugin keeps what is its own — the tokenizer, its positions, masker, target
normalizer, loss and any extra fields — and hands them to :func:`build_vit_mae`, which makes
the :class:`~maeflow.Encoder` and :class:`~maeflow.Decoder` from a :class:`ViTMAEConfig`,
composes the :class:`~maeflow.MaskedAutoencoder`, initializes it and sets ``model.config``::

    @dataclass(frozen=True)
    class SignalMAEConfig(maeflow.ViTMAEConfig):
        length: int = 64
        window: int = 8
        mask_ratio: float = 0.5  # a different default for an inherited field

    def build_signal_mae(cfg: SignalMAEConfig) -> maeflow.MaskedAutoencoder:
        tokenizer = WindowTokenizer(cfg.length, cfg.window, cfg.embed_dim)
        positions = torch.arange(tokenizer.num_tokens)
        return maeflow.build_vit_mae(
            cfg, tokenizer, modality="signal", cls_token=False,
            pos_table=lambda dim: maeflow.sincos_1d(dim, positions),
            target_normalizer=maeflow.PatchNormalizer(),
        )
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from maeflow.interfaces import Loss, Masker, TargetNormalizer, Tokens
from maeflow.model import Decoder, Encoder, MaskedAutoencoder
from maeflow.nn.pos_embed import FixedPosEmbed
from maeflow.plugins import registry


@dataclass(frozen=True)
class ViTMAEConfig:
    """The settings :func:`build_vit_mae` reads. Defaults are MAE's ViT-B/16 encoder with the
    paper's decoder (512 wide, 8 blocks, 16 heads), masking 75 % at random.

    A modality's config extends it (``@dataclass(frozen=True) class MyConfig(ViTMAEConfig)``),
    adds its own fields and re-declares the defaults it changes; the plugins' configs inherit
    the rest, so a change here changes their defaults too. ``masker`` names a registered masker
    (used unless the builder is handed one); ``attention`` is the attention backend
    (``maeflow.nn.attention``).
    """

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mask_ratio: float = 0.75
    masker: str = "random"
    attention: str = "auto"


def build_vit_mae(
    cfg: ViTMAEConfig,
    tokenizer: nn.Module,
    *,
    modality: str,
    target_normalizer: TargetNormalizer,
    pos_table: Callable[[int], torch.Tensor] | None = None,
    pos_embed: Callable[[int], nn.Module] | None = None,
    masker: Masker | None = None,
    loss: Loss | None = None,
    cls_token: bool = True,
    pos_every_block: bool = False,
    drop_path_rate: float = 0.0,
    decoder_block_factory: Callable[[int], nn.Module] | None = None,
    decoder_embed_bias: bool = True,
    project_latent: bool = True,
    init: str = "xavier",
) -> MaskedAutoencoder:
    """Encoder + decoder from ``cfg`` around ``tokenizer`` (whose ``embed_dim`` must be
    ``cfg.embed_dim``), in a :class:`~maeflow.MaskedAutoencoder` initialized with ``init``
    (``"xavier"`` or ``"trunc_normal"``, see ``init_weights``), with ``model.config = cfg``.

    - Positions, one of: ``pos_table(dim) -> (L, dim)`` a fixed table (held in a
      :class:`~maeflow.FixedPosEmbed`), or ``pos_embed(dim) -> module`` any positional module
      (e.g. an MLP of point-group centers). Each is called once for the encoder's width and
      once for the decoder's.
    - ``masker``: default the registered ``cfg.masker``; ``loss``: default the registered
      ``"mse"``.
    - ``cls_token``: a learned cls token in front of the encoder's tokens (the decoder then
      carries one prefix token).
    - ``pos_every_block``, ``drop_path_rate``: as in :class:`~maeflow.Encoder`, for both sides.
    - ``decoder_block_factory``: custom decoder blocks (:class:`~maeflow.Decoder`'s
      ``block_factory``); ``decoder_embed_bias=False``: an encoder-to-decoder projection
      without bias (VideoMAE); ``project_latent=False``: no projection at all (needs equal
      widths; Point-MAE when they are equal).

    ``cfg.mask_ratio`` must leave at least one token masked and one visible with this masker
    and tokenizer (:func:`check_mask_counts`; ``ValueError`` naming the ratio that would).
    """
    check_vit_config(cfg)
    if (pos_table is None) == (pos_embed is None):
        raise ValueError("build_vit_mae needs exactly one of pos_table and pos_embed")
    if not decoder_embed_bias and not project_latent:
        raise ValueError("decoder_embed_bias=False needs project_latent=True (there is no projection otherwise)")
    tokens_dim = getattr(tokenizer, "embed_dim", cfg.embed_dim)
    if tokens_dim != cfg.embed_dim:
        raise ValueError(f"the tokenizer embeds to width {tokens_dim}, the config's embed_dim is {cfg.embed_dim}")

    masker = registry("masker").get(cfg.masker)() if masker is None else masker
    check_mask_counts(tokenizer, masker, cfg.mask_ratio)

    def positions(dim: int) -> nn.Module:
        return FixedPosEmbed(pos_table(dim)) if pos_embed is None else pos_embed(dim)

    # the order in which modules are made is the order of the draws from torch's global
    # generator: keep it (encoder, then decoder) so that seeded builds stay as they are
    encoder = Encoder(
        cfg.embed_dim, cfg.depth, cfg.num_heads,
        pos_embed=positions(cfg.embed_dim),
        mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias, norm_eps=cfg.norm_eps,
        cls_token=cls_token, pos_every_block=pos_every_block, attention=cfg.attention,
        drop_path_rate=drop_path_rate,
    )  # fmt: skip
    decoder = Decoder(
        cfg.embed_dim, cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_num_heads,
        out_dim=tokenizer.target_dim,
        pos_embed=positions(cfg.decoder_embed_dim),
        mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias, norm_eps=cfg.norm_eps,
        num_prefix_tokens=1 if cls_token else 0, pos_every_block=pos_every_block, attention=cfg.attention,
        block_factory=decoder_block_factory, project_latent=project_latent, drop_path_rate=drop_path_rate,
    )  # fmt: skip
    if not decoder_embed_bias:
        # replaced after construction (rather than built so) to keep the draws of existing presets
        decoder.embed = nn.Linear(cfg.embed_dim, cfg.decoder_embed_dim, bias=False)
    model = MaskedAutoencoder(
        tokenizer,
        masker=masker,
        encoder=encoder,
        decoder=decoder,
        target_normalizer=target_normalizer,
        loss=registry("loss").get("mse")() if loss is None else loss,
        mask_ratio=cfg.mask_ratio,
        modality=modality,
    )
    model.init_weights(init)
    model.config = cfg
    return model


def check_vit_config(cfg: ViTMAEConfig) -> None:
    """``ValueError`` naming the field for widths, head counts and depths that cannot build a
    ViT (not positive, a width not divisible by its heads) and a non-positive or non-finite
    ``mlp_ratio`` / ``norm_eps``."""
    for width, heads in (("embed_dim", "num_heads"), ("decoder_embed_dim", "decoder_num_heads")):
        w, h = getattr(cfg, width), getattr(cfg, heads)
        for name, v in ((width, w), (heads, h)):
            if v < 1:
                raise ValueError(f"model option {name!r} must be at least 1, got {v}")
        if w % h:
            raise ValueError(f"model option {width!r} ({w}) must be divisible by {heads!r} ({h})")
    for name in ("depth", "decoder_depth"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"model option {name!r} must be >= 0, got {getattr(cfg, name)}")
    for name in ("mlp_ratio", "norm_eps"):
        v = getattr(cfg, name)
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"model option {name!r} must be a positive finite number, got {v}")


def _mask_counts(tokenizer: nn.Module, masker: Masker, ratio: float) -> tuple[int, int] | None:
    """(visible, masked) tokens per sample that ``masker`` gives at ``ratio``, from a dry run on
    stand-in tokens (the tokenizer's ``num_tokens`` and grid, random positions from a private
    generator: the global RNG is not touched); None when the masker cannot run on stand-ins."""
    L = int(tokenizer.num_tokens)
    layout = getattr(tokenizer, "layout", None) or getattr(tokenizer, "grid", None)
    gen = torch.Generator().manual_seed(0)
    cpu = torch.device("cpu")  # explicit: models may be built under a meta-device context (the bench)
    tokens = Tokens(embeddings=torch.zeros(1, L, 1, device=cpu),
                    positions=torch.rand(1, L, 3, generator=gen, device=cpu),
                    targets=torch.zeros(1, L, 1, device=cpu),
                    layout=tuple(layout) if layout is not None else None)  # fmt: skip
    try:
        masked = int(masker(tokens, ratio, generator=gen).mask[0].sum())
    except (ValueError, TypeError, RuntimeError):
        return None
    return L - masked, masked


def check_mask_counts(tokenizer: nn.Module, masker: Masker, ratio: float) -> None:
    """``ValueError`` unless ``masker`` at ``ratio`` leaves at least one token masked (else every
    loss is 0) and one visible (else the encoder sees nothing), with the ratio that would work.
    Counts use the masker's own rounding (a dry run); skipped for tokenizers without ``num_tokens``."""
    from maeflow.masking import check_ratio

    check_ratio(ratio)
    L = getattr(tokenizer, "num_tokens", None)
    if L is not None and L < 2:
        raise ValueError(f"the tokenizer makes {L} token(s) per sample: MAE needs at least one masked and one "
                         "visible token (check the input size against the patch or group size)")  # fmt: skip
    counts = _mask_counts(tokenizer, masker, ratio) if L else None
    if counts is None or (counts[0] >= 1 and counts[1] >= 1):
        return
    visible, masked = counts
    name = type(masker).__name__
    what = f"mask_ratio={ratio:g} with the {name} leaves {visible} of {L} tokens visible and {masked} masked"
    need = "MAE needs at least one masked and one visible token"
    if visible < 1:
        raise ValueError(f"{what}: {need}; lower mask_ratio")
    if not _works(tokenizer, masker, _up((L - 1) / L)):
        raise ValueError(f"{what}, and no mask_ratio changes that: {need}; check the masker's own settings")
    lo, hi = 0, L - 1  # the smallest k with mask_ratio k/L (rounded up) that works, by bisection
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _works(tokenizer, masker, _up(mid / L)) else (mid, hi)
    raise ValueError(f"{what}: {need}; set mask_ratio to at least {_up(hi / L):g}")


def _up(ratio: float) -> float:
    return min(math.ceil(ratio * 10_000) / 10_000, 0.9999)


def _works(tokenizer: nn.Module, masker: Masker, ratio: float) -> bool:
    counts = _mask_counts(tokenizer, masker, ratio)
    return counts is not None and counts[0] >= 1 and counts[1] >= 1
