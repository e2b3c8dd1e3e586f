"""Image MAE presets: a config dataclass, one builder, and short preset functions."""

from __future__ import annotations

from dataclasses import dataclass

from maeflow import MaskedAutoencoder, ViTMAEConfig, build_vit_mae, preset, registry, sincos_2d
from maeflow_image.tokenizer import PatchTokenizer, to_hw


@dataclass(frozen=True)
class ImageMAEConfig(ViTMAEConfig):
    """Defaults are MAE ViT-L/16 at 224² with the paper's decoder (512 wide, 8 blocks, 16 heads).
    The ViT fields not re-declared here keep :class:`maeflow.ViTMAEConfig`'s defaults."""

    img_size: int | tuple[int, int] = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    norm_pix_loss: bool = True  # the paper's recipe; the reference model class defaults to False


def build_image_mae(cfg: ImageMAEConfig) -> MaskedAutoencoder:
    tokenizer = PatchTokenizer(to_hw(cfg.img_size), cfg.patch_size, cfg.in_chans, cfg.embed_dim)
    grid = tokenizer.grid
    normalizer = registry("target_normalizer").get("patch_norm" if cfg.norm_pix_loss else "identity")()
    return build_vit_mae(
        cfg, tokenizer, modality="image", cls_token=True,
        pos_table=lambda dim: sincos_2d(dim, grid), target_normalizer=normalizer,
    )  # fmt: skip


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
