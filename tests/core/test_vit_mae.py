"""maeflow.build_vit_mae: a custom modality's model from the shared config and builder."""

from dataclasses import dataclass

import pytest
import torch
from torch import nn

import maeflow
from maeflow.testing import check_model


class WindowTokenizer(nn.Module):
    """(B, T) signals → one token per window of ``window`` samples."""

    def __init__(self, length: int, window: int, dim: int):
        super().__init__()
        self.window, self.length = window, length
        self.embed_dim, self.num_tokens, self.target_dim = dim, length // window, window
        self.proj = nn.Linear(window, dim)

    def forward(self, x):
        targets = x.reshape(x.shape[0], self.num_tokens, self.window)
        return maeflow.Tokens(self.proj(targets), None, targets, (self.num_tokens,))

    def untokenize(self, values):
        return values.reshape(values.shape[0], self.length)

    def example_inputs(self, batch_size, generator=None):
        return torch.randn(batch_size, self.length, generator=generator)


@dataclass(frozen=True)
class SignalMAEConfig(maeflow.ViTMAEConfig):
    length: int = 64
    window: int = 8
    embed_dim: int = 32
    depth: int = 2
    num_heads: int = 2
    decoder_embed_dim: int = 16
    decoder_depth: int = 1
    decoder_num_heads: int = 2
    mask_ratio: float = 0.5


def build(cfg: SignalMAEConfig, **options) -> maeflow.MaskedAutoencoder:
    tokenizer = WindowTokenizer(cfg.length, cfg.window, cfg.embed_dim)
    positions = torch.arange(tokenizer.num_tokens)
    return maeflow.build_vit_mae(
        cfg, tokenizer, modality="signal", cls_token=False,
        pos_table=lambda dim: maeflow.sincos_1d(dim, positions),
        target_normalizer=maeflow.PatchNormalizer(), **options,
    )  # fmt: skip


def test_a_custom_modality_built_from_the_shared_config():
    cfg = SignalMAEConfig()
    assert cfg.mlp_ratio == 4.0 and cfg.masker == "random"  # inherited defaults
    model = build(cfg)
    assert model.config is cfg and model.modality == "signal" and model.mask_ratio == 0.5
    enc, dec = model.encoder, model.decoder
    assert enc.embed_dim == 32 and len(enc.blocks) == 2 and enc.cls_token is None
    assert dec.embed_dim == 16 and len(dec.blocks) == 1 and dec.num_prefix_tokens == 0
    assert dec.embed.in_features == 32 and dec.pred.out_features == 8 and dec.embed.bias is not None
    assert isinstance(model.masker, maeflow.RandomMasker) and isinstance(model.loss_fn, maeflow.MaskedMSELoss)
    x = model.tokenizer.example_inputs(3, generator=torch.Generator().manual_seed(0))
    out = model(x, generator=torch.Generator().manual_seed(1))
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.pred.shape == (3, 8, 8)
    assert all(p.grad is not None for p in model.parameters())
    check_model(model)


def test_options_reach_the_encoder_and_decoder():
    model = build(SignalMAEConfig(decoder_embed_dim=32), init="trunc_normal", decoder_embed_bias=False)
    assert model.decoder.embed.bias is None
    model = build(SignalMAEConfig(decoder_embed_dim=32), project_latent=False, drop_path_rate=0.1)
    assert isinstance(model.decoder.embed, nn.Identity)
    assert model.encoder.blocks[-1].drop_path.p == pytest.approx(0.1)


def test_positions_and_widths_are_checked():
    cfg = SignalMAEConfig()
    tokenizer = WindowTokenizer(cfg.length, cfg.window, cfg.embed_dim)
    with pytest.raises(ValueError, match="exactly one of pos_table and pos_embed"):
        maeflow.build_vit_mae(cfg, tokenizer, modality="signal", target_normalizer=maeflow.PatchNormalizer())
    with pytest.raises(ValueError, match="embed_dim is 48"):
        maeflow.build_vit_mae(
            SignalMAEConfig(embed_dim=48), tokenizer, modality="signal", target_normalizer=maeflow.PatchNormalizer(),
            pos_table=lambda dim: maeflow.sincos_1d(dim, torch.arange(8)),
        )  # fmt: skip
