"""Point-MAE presets: conformance, the reference's sizes, and the decoder-order equivalence."""

import pytest
import torch

import maeflow
from maeflow import gather_tokens
from maeflow.testing import check_model

POINT_TEST_MODELS = maeflow.list_models("pointmae*_test")


def test_there_are_point_test_models():
    assert {"pointmae_test", "pointmae_block_test"} <= set(POINT_TEST_MODELS)


@pytest.mark.parametrize("name", POINT_TEST_MODELS)
def test_point_presets_conform(name):
    check_model(maeflow.create_model(name))


def test_base_preset_has_point_mae_sizes():
    model = maeflow.create_model("pointmae_base")
    cfg = model.config
    assert (cfg.num_points, cfg.num_groups, cfg.group_size) == (1024, 64, 32)
    assert (model.encoder.embed_dim, len(model.encoder.blocks), model.encoder.blocks[0].attn.num_heads) == (384, 12, 6)
    assert (model.decoder.embed_dim, len(model.decoder.blocks), model.decoder.blocks[0].attn.num_heads) == (384, 4, 6)
    assert model.encoder.cls_token is None and model.encoder.pos_every_block and model.decoder.pos_every_block
    assert isinstance(model.decoder.embed, torch.nn.Identity)  # no projection: widths match
    assert model.decoder.pred.out_features == 32 * 3 and model.tokenizer.target_dim == 96
    assert model.encoder.blocks[0].attn.qkv.bias is None
    assert model.modality == "pointcloud" and model.mask_ratio == 0.6
    # trunc_normal(std=0.02) init (truncated at ±2 absolute, as timm's and torch's default)
    for w in (model.encoder.blocks[0].mlp.fc1.weight, model.tokenizer.second_conv[3].weight):
        assert abs(w.std().item() - 0.02) < 0.002
    assert torch.all(model.tokenizer.first_conv[0].bias == 0)
    shapes = [tuple(model.tokenizer.first_conv[i].weight.shape) for i in (0, 3)]
    shapes += [tuple(model.tokenizer.second_conv[i].weight.shape) for i in (0, 3)]
    assert shapes == [(128, 3, 1), (256, 128, 1), (512, 512, 1), (384, 512, 1)]
    out = model(model.tokenizer.example_inputs(1, generator=torch.Generator().manual_seed(0)))
    assert out.pred.shape == (1, 64, 96) and out.mask_info.num_visible == 26
    assert out.tokens.positions.shape == (1, 64, 3) and out.tokens.layout is None


def test_tokenizer_untokenize_gives_groups_back(seeded):
    model = maeflow.create_model("pointmae_test")
    x = model.tokenizer.example_inputs(2, generator=seeded)
    tokens = model.tokenizer(x)
    groups = model.tokenizer.untokenize(tokens.targets, tokens.positions)  # (B, G, k, 3), absolute
    assert groups.shape == (2, 16, 16, 3)
    # every rebuilt point is a point of the input cloud
    d = torch.cdist(groups.reshape(2, -1, 3), x, compute_mode="donot_use_mm_for_euclid_dist").amin(-1)
    assert d.max() < 1e-5
    with pytest.raises(ValueError, match="at least 16"):
        model.tokenizer(x[:, :10])
    with pytest.raises(ValueError, match="channels"):
        model.tokenizer(torch.cat([x, x[..., :1]], dim=-1))


def test_decoding_all_positions_equals_point_mae_visible_then_masked_order(seeded):
    """The core decodes every position in token order; Point-MAE decodes [visible, masked] and
    keeps the masked outputs. Same predictions for the masked groups."""
    model = maeflow.create_model("pointmae_test").eval()
    x = model.tokenizer.example_inputs(2, generator=seeded)
    with torch.no_grad():
        out = model(x, generator=torch.Generator().manual_seed(1))
        dec, info = model.decoder, out.mask_info
        ids_masked = (~info.mask).float().argsort(dim=1, stable=True)[:, : int(info.mask.sum(1)[0])]  # (B, M)
        centers = out.tokens.positions
        seq = torch.cat([dec.embed(out.latent), dec.mask_token.expand(2, ids_masked.shape[1], -1)], dim=1)
        pos = dec.pos_embed(torch.cat([gather_tokens(centers, info.ids_keep), gather_tokens(centers, ids_masked)], 1))
        for block in dec.blocks:
            seq = block(seq + pos)
        ref = dec.pred(dec.norm(seq[:, info.num_visible :]))  # (B, M, k·3)
    assert torch.allclose(gather_tokens(out.pred, ids_masked), ref, atol=1e-5)


def test_mini_pointnet_matches_its_modules_on_the_conv_layout(seeded):
    tok = maeflow.create_model("pointmae_test").tokenizer.train()
    groups = torch.randn(2, 5, 16, 3, generator=seeded)
    x = groups.reshape(10, 16, 3).transpose(1, 2)  # (BG, C, k), the reference layout
    f = tok.first_conv(x)
    f = torch.cat([f.amax(2, keepdim=True).expand(-1, -1, 16), f], dim=1)
    ref = tok.second_conv(f).amax(2).reshape(2, 5, -1)
    assert torch.allclose(tok.embed(groups), ref, atol=1e-5)


def test_normalize_input_puts_raw_clouds_on_the_unit_sphere(seeded):
    model = maeflow.create_model("pointmae_test", normalize_input=True).eval()
    x = model.tokenizer.example_inputs(2, generator=seeded)
    with torch.no_grad():
        a, b = model.tokenizer(x), model.tokenizer(x * 7.5 + 3)
    assert torch.allclose(a.targets, b.targets, atol=1e-5) and torch.allclose(a.embeddings, b.embeddings, atol=1e-4)


def test_point_mae_uses_stochastic_depth_0_1_in_training_only(seeded):
    """Point-MAE's recipe: drop-path 0.1, ramped over the encoder's and the decoder's blocks."""
    model = maeflow.create_model("pointmae_test", decoder_depth=2)
    for stack in (model.encoder, model.decoder):
        rates = [getattr(b.drop_path, "p", 0.0) for b in stack.blocks]
        assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.1) and rates == sorted(rates)
    x = model.tokenizer.example_inputs(2, generator=seeded)
    noise = torch.rand(2, model.tokenizer.num_tokens, generator=seeded)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x, noise=noise).loss, model(x, noise=noise).loss)
    off = maeflow.create_model("pointmae_test", drop_path_rate=0.0)
    assert all(isinstance(b.drop_path, torch.nn.Identity) for b in off.encoder.blocks)
