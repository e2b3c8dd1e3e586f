"""Loading VideoMAE checkpoints through maeflow.load_checkpoint, and exporting to that layout."""

import logging

import pytest
import torch

import maeflow


def videomae_state_dict(model, seed=0):
    """A VideoMAE pretraining state dict in the reference's names and shapes, random values."""
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    D, Dd, C, t, p = cfg.embed_dim, cfg.decoder_embed_dim, cfg.in_chans, cfg.tubelet_size, cfg.patch_size
    P = t * p * p * C

    def r(*shape):
        return torch.randn(*shape, generator=g)

    def block(prefix, d):
        h = int(d * cfg.mlp_ratio)
        return {
            f"{prefix}.norm1.weight": r(d), f"{prefix}.norm1.bias": r(d),
            f"{prefix}.attn.q_bias": r(d), f"{prefix}.attn.v_bias": r(d),
            f"{prefix}.attn.qkv.weight": r(3 * d, d),
            f"{prefix}.attn.proj.weight": r(d, d), f"{prefix}.attn.proj.bias": r(d),
            f"{prefix}.norm2.weight": r(d), f"{prefix}.norm2.bias": r(d),
            f"{prefix}.mlp.fc1.weight": r(h, d), f"{prefix}.mlp.fc1.bias": r(h),
            f"{prefix}.mlp.fc2.weight": r(d, h), f"{prefix}.mlp.fc2.bias": r(d),
        }  # fmt: skip

    sd = {"encoder.patch_embed.proj.weight": r(D, C, t, p, p), "encoder.patch_embed.proj.bias": r(D)}
    for i in range(cfg.depth):
        sd.update(block(f"encoder.blocks.{i}", D))
    sd.update({"encoder.norm.weight": r(D), "encoder.norm.bias": r(D)})
    sd.update({"encoder_to_decoder.weight": r(Dd, D), "mask_token": r(1, 1, Dd)})
    for i in range(cfg.decoder_depth):
        sd.update(block(f"decoder.blocks.{i}", Dd))
    sd.update({"decoder.norm.weight": r(Dd), "decoder.norm.bias": r(Dd)})
    sd.update({"decoder.head.weight": r(P, Dd), "decoder.head.bias": r(P)})
    return sd


def reference_attention(x, qkv_weight, q_bias, v_bias, proj_weight, proj_bias, heads):
    """VideoMAE's attention written out: q and v have biases, k has none."""
    B, N, D = x.shape
    q = x @ qkv_weight[:D].T + q_bias
    k = x @ qkv_weight[D : 2 * D].T
    v = x @ qkv_weight[2 * D :].T + v_bias
    q, k, v = (z.reshape(B, N, heads, D // heads).transpose(1, 2) for z in (q, k, v))
    attn = ((q @ k.transpose(-2, -1)) * (D // heads) ** -0.5).softmax(-1)
    return (attn @ v).transpose(1, 2).reshape(B, N, D) @ proj_weight.T + proj_bias


@pytest.mark.parametrize("wrap", [None, "model", "module"])
def test_videomae_file_loads_strictly_and_exports_back(tmp_path, wrap):
    model = maeflow.create_model("videomae_vit_test", attention="math")
    sd = videomae_state_dict(model)
    path = tmp_path / "videomae.pth"
    torch.save({wrap: sd} if wrap else sd, path)
    result = maeflow.load_checkpoint(model, path, strict=True)
    assert result.format == "videomae" and not result.missing and not result.unexpected
    D = model.config.embed_dim
    bias = model.encoder.blocks[1].attn.qkv.bias.detach()
    torch.testing.assert_close(bias[:D], sd["encoder.blocks.1.attn.q_bias"])
    assert (bias[D : 2 * D] == 0).all()
    torch.testing.assert_close(bias[2 * D :], sd["encoder.blocks.1.attn.v_bias"])
    torch.testing.assert_close(model.tokenizer.proj.weight.detach(), sd["encoder.patch_embed.proj.weight"])
    torch.testing.assert_close(model.decoder.pred.weight.detach(), sd["decoder.head.weight"])

    back = maeflow.export_state_dict(model, "videomae")
    assert set(back) == set(sd)
    for key, value in sd.items():
        torch.testing.assert_close(back[key], value, msg=key)


def test_loaded_attention_matches_videomae_attention():
    model = maeflow.create_model("videomae_vit_test", attention="math")
    sd = videomae_state_dict(model, seed=1)
    maeflow.load_checkpoint(model, sd, strict=True)
    x = torch.randn(2, 10, model.config.embed_dim)
    pre = "encoder.blocks.0.attn."
    ref = reference_attention(x, sd[pre + "qkv.weight"], sd[pre + "q_bias"], sd[pre + "v_bias"],
                              sd[pre + "proj.weight"], sd[pre + "proj.bias"], model.config.num_heads)  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(model.encoder.blocks[0].attn(x), ref, atol=1e-4, rtol=1e-4)


def test_native_maeflow_state_dicts_still_load_as_native():
    model = maeflow.create_model("videomae_vit_test")
    other = maeflow.create_model("videomae_vit_test")
    assert maeflow.load_checkpoint(other, model.state_dict(), strict=True).format == "maeflow"


def test_a_3d_position_model_warns_that_videomae_used_1d_tables(caplog):
    model = maeflow.create_model("videomae_vit_test", pos_embed="sincos_3d")
    with caplog.at_level(logging.WARNING):
        maeflow.load_checkpoint(model, videomae_state_dict(model))
    assert "pos_embed='sincos_1d'" in caplog.text


def test_export_refuses_what_videomae_cannot_hold():
    with pytest.raises(ValueError, match="no cls token"):
        maeflow.export_state_dict(maeflow.create_model("videomae_vit_spacetime_test"), "videomae")
    model = maeflow.create_model("videomae_vit_test", decoder_embed_bias=True)
    with torch.no_grad():
        model.decoder.embed.bias.fill_(0.5)
    with pytest.raises(ValueError, match="encoder_to_decoder has no bias"):
        maeflow.export_state_dict(model, "videomae")
