"""Audio-MAE presets: a config dataclass, one builder, and short preset functions."""

from __future__ import annotations

from dataclasses import dataclass

from maeflow import MaskedAutoencoder, ViTMAEConfig, build_vit_mae, preset, registry, sincos_2d
from maeflow_audio.attention import WindowedBlock
from maeflow_audio.masking import TimeFrequencyMasker
from maeflow_audio.tokenizer import SpectrogramTokenizer, to_tf


@dataclass(frozen=True)
class AudioMAEConfig(ViTMAEConfig):
    """Defaults are Audio-MAE ViT-B/16 on 1024 × 128 AudioSet spectrograms: mask 0.8, decoder
    512 wide, 8 blocks, 16 heads, norm-pix targets.

    ``input_size`` is (frames, mel bins) and ``sample_rate`` the rate the front end resamples
    to; datasets built for this model take both from here. ``decoder_attention`` is
    ``"global"`` or ``"local"`` (windows of ``decoder_window`` tokens over the (T', F') grid,
    every other block shifted by ``decoder_shift``; Audio-MAE's published decoder uses (4, 4)
    windows shifted by (2, 0)). ``masker`` is ``"random"`` or ``"time_freq"`` (whose ratios
    default to values derived from ``mask_ratio``; see :class:`TimeFrequencyMasker`). The ViT
    fields not re-declared here keep :class:`maeflow.ViTMAEConfig`'s defaults.
    """

    input_size: int | tuple[int, int] = (1024, 128)
    sample_rate: int = 16000
    patch_size: int = 16
    decoder_attention: str = "global"
    decoder_window: tuple[int, int] = (4, 4)
    decoder_shift: tuple[int, int] = (2, 0)
    mask_ratio: float = 0.8
    mask_time_ratio: float | None = None
    mask_freq_ratio: float | None = None
    norm_pix_loss: bool = True


def _decoder_blocks(cfg: AudioMAEConfig, grid: tuple[int, int]):
    if cfg.decoder_attention == "global":
        return None
    if cfg.decoder_attention != "local":
        raise ValueError(f"decoder_attention must be 'global' or 'local', got {cfg.decoder_attention!r}")

    def block(i: int) -> WindowedBlock:
        return WindowedBlock(
            cfg.decoder_embed_dim, cfg.decoder_num_heads, grid, window=tuple(cfg.decoder_window),
            shift=(0, 0) if i % 2 == 0 else tuple(cfg.decoder_shift), mlp_ratio=cfg.mlp_ratio,
            qkv_bias=cfg.qkv_bias, norm_eps=cfg.norm_eps, attention=cfg.attention, num_prefix_tokens=1,
        )  # fmt: skip

    return block


def _masker(cfg: AudioMAEConfig):
    if cfg.masker == "time_freq":
        return TimeFrequencyMasker(cfg.mask_time_ratio, cfg.mask_freq_ratio)
    if cfg.mask_time_ratio is not None or cfg.mask_freq_ratio is not None:
        raise ValueError("mask_time_ratio / mask_freq_ratio apply to masker='time_freq' only")
    return registry("masker").get(cfg.masker)()


def build_audio_mae(cfg: AudioMAEConfig) -> MaskedAutoencoder:
    tokenizer = SpectrogramTokenizer(to_tf(cfg.input_size), cfg.patch_size, cfg.embed_dim)
    grid = tokenizer.grid  # (T', F')
    normalizer = registry("target_normalizer").get("patch_norm" if cfg.norm_pix_loss else "identity")()
    return build_vit_mae(
        cfg, tokenizer, modality="audio", cls_token=True, pos_table=lambda dim: sincos_2d(dim, grid),
        decoder_block_factory=_decoder_blocks(cfg, grid), masker=_masker(cfg), target_normalizer=normalizer,
    )  # fmt: skip


def _preset(**defaults):
    return preset(build_audio_mae, AudioMAEConfig, **defaults)


_TEST = dict(
    input_size=(64, 32), patch_size=8, embed_dim=32, depth=2, num_heads=2,
    decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=2,
)  # fmt: skip

PRESETS = {
    # the paper's model (global decoder by default; decoder_attention="local" for the Swin-style one)
    "audiomae_vit_base_patch16": _preset(),
    # a small one for one GPU or a CPU: 1 s clips (Speech Commands' 128 frames)
    "audiomae_vit_tiny_patch16": _preset(
        input_size=(128, 128),
        embed_dim=192,
        depth=12,
        num_heads=3,
        decoder_embed_dim=128,
        decoder_depth=4,
        decoder_num_heads=4,
    ),
    # for tests: 64 frames x 32 mel bins, 8 x 8 patches → an 8 x 4 token grid
    "audiomae_vit_test": _preset(**_TEST),
    "audiomae_vit_local_test": _preset(**_TEST, decoder_attention="local", decoder_window=(2, 2), decoder_shift=(1, 1)),
    "audiomae_vit_timefreq_test": _preset(**_TEST, masker="time_freq", mask_time_ratio=0.5, mask_freq_ratio=0.5),
}
