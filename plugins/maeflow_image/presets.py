"""Image MAE presets: a config dataclass, one builder, and short preset functions."""

from __future__ import annotations

from dataclasses import dataclass

from maeflow import (
    Decoder,
    Encoder,
    FixedPosEmbed,
    MaskedAutoencoder,
    preset,
    registry,
    sincos_2d,
)
from maeflow_image.tokenizer import PatchTokenizer, to_hw


@dataclass(frozen=True)
class ImageMAEConfig:
    """Defaults are MAE ViT-L/16 at 224² with the paper's decoder (512 wide, 8 blocks, 16 heads)."""

    img_size: int | tuple[int, int] = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mask_ratio: float = 0.75
    norm_pix_loss: bool = True  # the paper's recipe; the reference model class defaults to False
    masker: str = "random"
    attention: str = "auto"


def build_image_mae(cfg: ImageMAEConfig) -> MaskedAutoencoder:
    img_size = to_hw(cfg.img_size)
    tokenizer = PatchTokenizer(img_size, cfg.patch_size, cfg.in_chans, cfg.embed_dim)
    grid = tokenizer.grid
    encoder = Encoder(
        cfg.embed_dim, cfg.depth, cfg.num_heads,
        pos_embed=FixedPosEmbed(sincos_2d(cfg.embed_dim, grid)),
        mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias, norm_eps=cfg.norm_eps,
        cls_token=True, attention=cfg.attention,
    )  # fmt: skip
    decoder = Decoder(
        cfg.embed_dim, cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_num_heads,
        out_dim=tokenizer.target_dim,
        pos_embed=FixedPosEmbed(sincos_2d(cfg.decoder_embed_dim, grid)),
        mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias, norm_eps=cfg.norm_eps,
        num_prefix_tokens=1, attention=cfg.attention,
    )  # fmt: skip
    normalizer = registry("target_normalizer").get("patch_norm" if cfg.norm_pix_loss else "identity")()
    model = MaskedAutoencoder(
        tokenizer,
        masker=registry("masker").get(cfg.masker)(),
        encoder=encoder,
        decoder=decoder,
        target_normalizer=normalizer,
        loss=registry("loss").get("mse")(),
        mask_ratio=cfg.mask_ratio,
        modality="image",
    )
    model.init_weights("xavier")
    model.config = cfg
    return model


def _preset(**defaults):
    return preset(build_image_mae, ImageMAEConfig, **defaults)


PRESETS = {
    # the paper's models
    "mae_vit_base_patch16": _preset(embed_dim=768, depth=12, num_heads=12),
    "mae_vit_large_patch16": _preset(embed_dim=1024, depth=24, num_heads=16),
    "mae_vit_huge_patch14": _preset(patch_size=14, embed_dim=1280, depth=32, num_heads=16),
    # smaller ones for one GPU or a CPU
    "mae_vit_small_patch16": _preset(
        embed_dim=384, depth=12, num_heads=6, decoder_embed_dim=256, decoder_depth=4, decoder_num_heads=8
    ),
    "mae_vit_tiny_patch16": _preset(
        embed_dim=192, depth=12, num_heads=3, decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4
    ),
    # for tests: 32² images, 8-pixel patches, two blocks
    "mae_vit_test": _preset(
        img_size=32,
        patch_size=8,
        embed_dim=32,
        depth=2,
        num_heads=2,
        decoder_embed_dim=32,
        decoder_depth=1,
        decoder_num_heads=2,
    ),  # fmt: skip
}
