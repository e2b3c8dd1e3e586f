"""Patch tokenizer: any channel count, non-square inputs, untokenize, clear errors."""

import pytest
import torch

import maeflow
from maeflow_image import PatchTokenizer


def reference_patchify(x, p):
    """The MAE reference's patchify written out with explicit loops (channel last in a patch)."""
    B, C, H, W = x.shape
    out = torch.empty(B, (H // p) * (W // p), p * p * C)
    for i in range(H // p):
        for j in range(W // p):
            patch = x[:, :, i * p : (i + 1) * p, j * p : (j + 1) * p]  # (B, C, p, p)
            out[:, i * (W // p) + j] = patch.permute(0, 2, 3, 1).reshape(B, -1)
    return out


@pytest.mark.parametrize("size,chans", [((32, 48), 3), ((16, 8), 1), ((24, 24), 5)])
def test_patchify_matches_reference_and_untokenize_inverts(size, chans):
    tok = PatchTokenizer(size, 8, chans, 16)
    x = torch.randn(2, chans, *size)
    tokens = tok(x)
    assert tokens.layout == (size[0] // 8, size[1] // 8)
    torch.testing.assert_close(tokens.targets, reference_patchify(x, 8))
    torch.testing.assert_close(tok.untokenize(tokens.targets), x)


def test_non_square_model_trains():
    model = maeflow.create_model("mae_vit_test", img_size=(32, 48), in_chans=1)
    out = model(torch.randn(2, 1, 32, 48))
    assert out.pred.shape == (2, 24, 64)
    out.loss.backward()


def test_bad_inputs_raise_one_clear_value_error():
    with pytest.raises(ValueError, match="not divisible by the patch size 8"):
        maeflow.create_model("mae_vit_test", img_size=30)
    model = maeflow.create_model("mae_vit_test")
    with pytest.raises(ValueError, match="expected 3 channels, got 1"):
        model(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="not divisible by the patch size"):
        model(torch.randn(2, 3, 30, 32))
    with pytest.raises(ValueError, match="built for 32x32 inputs, got 64x64"):
        model(torch.randn(2, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        model(torch.randn(3, 32, 32))


def test_unknown_model_and_component_names_suggest_a_match():
    with pytest.raises(ValueError, match="unknown model 'mae_vit_bse_patch16': did you mean 'mae_vit_base_patch16'"):
        maeflow.create_model("mae_vit_bse_patch16")
    with pytest.raises(ValueError, match="unknown model option 'embed_dims': did you mean 'embed_dim'"):
        maeflow.create_model("mae_vit_test", embed_dims=8)
    with pytest.raises(ValueError, match="unknown masker 'randm'.*did you mean 'random'"):
        maeflow.create_model("mae_vit_test", masker="randm")
    with pytest.raises(ValueError, match="unknown attention backend"):
        maeflow.create_model("mae_vit_test", attention="fast")


def test_presets_have_the_papers_shapes():
    for name, (D, _depth, heads, p) in {
        "mae_vit_base_patch16": (768, 12, 12, 16),
        "mae_vit_large_patch16": (1024, 24, 16, 16),
        "mae_vit_huge_patch14": (1280, 32, 16, 14),
    }.items():
        model = maeflow.create_model(name, depth=1, decoder_depth=1)  # keep it cheap to build
        assert model.config.embed_dim == D and model.config.num_heads == heads and model.config.patch_size == p
        assert model.decoder.embed_dim == 512 and model.config.decoder_num_heads == 16
        assert model.config.decoder_depth == 1
    base = maeflow.create_model("mae_vit_base_patch16")
    assert len(base.encoder.blocks) == 12 and len(base.decoder.blocks) == 8
    n = sum(p.numel() for p in base.parameters())
    assert 111_000_000 < n < 112_500_000  # ViT-B MAE: ~111.7M learned parameters (sin-cos tables are fixed)


def test_reference_init():
    model = maeflow.create_model("mae_vit_test")
    assert torch.all(model.decoder.embed.bias == 0)
    assert torch.all(model.encoder.norm.weight == 1)
    w = model.encoder.blocks[0].mlp.fc1.weight
    bound = (6 / (w.shape[0] + w.shape[1])) ** 0.5  # xavier-uniform
    assert w.abs().max() <= bound and w.abs().max() > 0.5 * bound
    assert 0.005 < model.decoder.mask_token.std() < 0.05
