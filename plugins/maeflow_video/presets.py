"""VideoMAE presets: a config dataclass, one builder, and short preset functions."""

from __future__ import annotations

from dataclasses import dataclass

from maeflow import ChannelPatchNormalizer, MaskedAutoencoder, ViTMAEConfig, build_vit_mae, preset, registry
from maeflow_video.tokenizer import TubeletTokenizer, video_pos_table


@dataclass(frozen=True)
class VideoMAEConfig(ViTMAEConfig):
    """Defaults are VideoMAE ViT-B at 16×224², tubelet 2×16×16, tube masking at 0.9, decoder
    384 wide with 4 blocks and 6 heads, no cls token, per-channel tubelet-normalized targets.

    ``pos_embed``: ``"sincos_3d"`` (default; time and space coordinates apart) or
    ``"sincos_1d"`` (VideoMAE's table over the flattened token index, which its published
    weights were trained with — the published-model presets below use it).
    ``masker``: ``"tube"`` or ``"random_spacetime"``. ``target_norm``: ``"channel_patch_norm"``
    (VideoMAE, the default and the published presets'), ``"patch_norm"`` (image MAE, over all
    t·p·p·C values; the small test presets', see below) or ``"identity"``.
    ``decoder_embed_bias``: VideoMAE's encoder-to-decoder projection has no bias. The ViT
    fields not re-declared here keep :class:`maeflow.ViTMAEConfig`'s defaults.
    """

    num_frames: int = 16
    img_size: int | tuple[int, int] = 224
    tubelet_size: int = 2
    patch_size: int = 16
    in_chans: int = 3
    cls_token: bool = False
    decoder_embed_dim: int = 384
    decoder_depth: int = 4
    decoder_num_heads: int = 6
    decoder_embed_bias: bool = False
    mask_ratio: float = 0.9
    masker: str = "tube"
    target_norm: str = "channel_patch_norm"
    pos_embed: str = "sincos_3d"


def _normalizer(cfg: VideoMAEConfig):
    factory = registry("target_normalizer").get(cfg.target_norm)
    if factory is ChannelPatchNormalizer:
        return factory(channels=cfg.in_chans)  # needs to know where one channel's values are
    return factory()


def build_video_mae(cfg: VideoMAEConfig) -> MaskedAutoencoder:
    tokenizer = TubeletTokenizer(
        cfg.num_frames, cfg.img_size, cfg.tubelet_size, cfg.patch_size, cfg.in_chans, cfg.embed_dim
    )
    layout = tokenizer.layout
    # VideoMAE's attention has separate q and v biases and no k bias. maeflow's fused qkv bias
    # holds the same function with the k part at zero: a k bias adds q·b_k to every score of a
    # query's row, softmax is invariant to that shift, so the k bias changes nothing and its
    # gradient is zero. Checkpoints load q_bias/v_bias with zeros for k (see formats.py).
    return build_vit_mae(
        cfg, tokenizer, modality="video", cls_token=cfg.cls_token,
        pos_table=lambda dim: video_pos_table(cfg.pos_embed, dim, layout),
        target_normalizer=_normalizer(cfg), decoder_embed_bias=cfg.decoder_embed_bias,
    )  # fmt: skip


def _preset(**defaults):
    return preset(build_video_mae, VideoMAEConfig, **defaults)


# the published models use VideoMAE's 1-D table, so that its checkpoints load as trained
_PUBLISHED = dict(pos_embed="sincos_1d")

_TEST = dict(
    num_frames=8, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2,
    decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2,
)  # fmt: skip

PRESETS = {
    "videomae_vit_small_patch16": _preset(
        embed_dim=384, depth=12, num_heads=6, decoder_embed_dim=192, decoder_num_heads=3, **_PUBLISHED
    ),
    "videomae_vit_base_patch16": _preset(embed_dim=768, depth=12, num_heads=12, **_PUBLISHED),
    "videomae_vit_large_patch16": _preset(
        embed_dim=1024, depth=24, num_heads=16, decoder_embed_dim=512, decoder_num_heads=8, **_PUBLISHED
    ),
    "videomae_vit_huge_patch16": _preset(
        embed_dim=1280, depth=32, num_heads=16, decoder_embed_dim=640, decoder_num_heads=8, **_PUBLISHED
    ),
    # for tests and small runs: 8 frames of 32², tubelets 2×8×8 → 4×4×4 = 64 tokens, two blocks.
    # Image-MAE targets (patch_norm) rather than VideoMAE's per-channel ones: at this scale a model
    # learns the colour offsets between a patch's channels first — 67 % of the patch_norm target
    # on real photos — and per-channel normalization removes exactly those. Measured on clips that
    # repeat one real 32² photo (benchmarks/video_target_control.py, 400 steps, held-out loss vs
    # predict-zero): patch_norm 0.419 vs 0.997 (image MAE on the same photos: 0.409);
    # channel_patch_norm 0.977 vs 0.992 (image MAE with per-channel targets: 0.953 vs 0.984).
    # Longer on real clips the per-channel target pays off all the same: 108 epochs of camera pans
    # (benchmarks/real_data, 4-pixel tubelets) end at 0.88x the trivial loss against patch_norm's
    # 0.55x, yet fine-tune better on 5 % of the labels (86.7 vs 71.2; random init 36.0), which is
    # why the published presets keep VideoMAE's target.
    "videomae_vit_test": _preset(**_TEST, **_PUBLISHED, target_norm="patch_norm"),
    # the spatiotemporal-MAE variant: random masking over space-time, image-MAE targets, 3-D positions
    "videomae_vit_spacetime_test": _preset(
        **_TEST,
        decoder_embed_bias=True,
        masker="random_spacetime",
        target_norm="patch_norm",
        pos_embed="sincos_3d",
        cls_token=True,
    ),  # fmt: skip
}
