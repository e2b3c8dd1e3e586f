"""Point-MAE presets: a config dataclass, one builder, and short preset functions.

The core runs the decoder over all G positions (visible latents and mask tokens put back in
token order) and the Chamfer loss reads only the masked groups. Point-MAE instead concatenates
``[visible..., mask tokens...]`` and keeps the decoder outputs of the mask tokens. The two are
the same computation up to a permutation of the sequence: with positions added before every
block and no causal structure, self-attention and the per-token MLPs are permutation-
equivariant, so each masked group gets the same prediction either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from maeflow import MaskedAutoencoder, ViTMAEConfig, build_vit_mae, preset, registry
from maeflow_pointcloud.tokenizer import CenterPosEmbed, PointGroupTokenizer


@dataclass(frozen=True)
class PointMAEConfig(ViTMAEConfig):
    """Defaults are Point-MAE's ShapeNet-55 pretraining model: 1024 points in 64 groups of 32,
    a 384-wide 12-block encoder with 6 heads, a 384-wide 4-block decoder with 6 heads, 60%
    random masking (38 masked, 26 visible), Chamfer-L2, qkv without bias, LayerNorm eps 1e-5,
    stochastic depth 0.1 (rising linearly over the blocks of the encoder and of the decoder).
    ``masker``: ``"random"`` or ``"point_block"``. The ViT fields not re-declared here keep
    :class:`maeflow.ViTMAEConfig`'s defaults."""

    num_points: int = 1024
    num_groups: int = 64
    group_size: int = 32
    point_features: int = 0
    fps_start: str = "first"
    # (not "normalize": dataset options named like a model setting default to the model's value)
    normalize_input: bool = False
    pointnet_widths: tuple[int, int, int] = (128, 256, 512)
    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    qkv_bias: bool = False
    norm_eps: float = 1e-5
    pos_hidden: int = 128
    decoder_embed_dim: int = 384
    decoder_depth: int = 4
    decoder_num_heads: int = 6
    mask_ratio: float = 0.6
    mask_rounding: str = "mask"  # int(ratio · G) masked, as Point-MAE
    loss: str = "chamfer_l2"
    init: str = "trunc_normal"
    drop_path_rate: float = 0.1  # stochastic depth in encoder and decoder, ramped 0 → 0.1 over each stack


def build_point_mae(cfg: PointMAEConfig) -> MaskedAutoencoder:
    tokenizer = PointGroupTokenizer(
        cfg.num_groups, cfg.group_size, cfg.embed_dim, cfg.num_points, cfg.point_features,
        cfg.fps_start, cfg.normalize_input, tuple(cfg.pointnet_widths),
    )  # fmt: skip
    return build_vit_mae(
        cfg, tokenizer, modality="pointcloud", cls_token=False, pos_every_block=True,
        pos_embed=lambda dim: CenterPosEmbed(dim, cfg.pos_hidden), drop_path_rate=cfg.drop_path_rate,
        # Point-MAE feeds the encoder output to the decoder directly when the widths match
        project_latent=cfg.decoder_embed_dim != cfg.embed_dim,
        masker=registry("masker").get(cfg.masker)(rounding=cfg.mask_rounding),
        target_normalizer=registry("target_normalizer").get("identity")(),
        loss=registry("loss").get(cfg.loss)(), init=cfg.init,
    )  # fmt: skip


def _preset(**defaults):
    return preset(build_point_mae, PointMAEConfig, **defaults)


# tiny models for tests and CPU demos: 256 points in 16 groups of 16
_TEST = dict(
    num_points=256, num_groups=16, group_size=16, embed_dim=32, depth=2, num_heads=2,
    decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2, pos_hidden=16, pointnet_widths=(16, 32, 64),
)  # fmt: skip

PRESETS = {
    # the paper's model (ShapeNet-55 pretraining)
    "pointmae_base": _preset(),
    # the same with block masking of the groups nearest a random center
    "pointmae_base_block": _preset(masker="point_block"),
    # a small one for CPU demos: 512 points in 32 groups of 32, 4 blocks of 128
    "pointmae_small": _preset(
        num_points=512,
        num_groups=32,
        group_size=32,
        embed_dim=128,
        depth=4,
        num_heads=4,
        decoder_embed_dim=128,
        decoder_depth=2,
        decoder_num_heads=4,
        pos_hidden=64,
    ),  # fmt: skip
    "pointmae_test": _preset(**_TEST),
    "pointmae_block_test": _preset(**_TEST, masker="point_block"),
    # per-point features in, and a decoder wider than the encoder (a projection between them)
    "pointmae_features_test": _preset(
        **{**_TEST, "point_features": 2, "decoder_embed_dim": 48, "decoder_num_heads": 3}
    ),
}
