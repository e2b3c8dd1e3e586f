"""Official MAE layout round trips, encoder-only files, timm export."""

import functools

import pytest
import torch

import maeflow


def make(name="mae_vit_test", **kw):
    torch.manual_seed(0)
    return maeflow.create_model(name, **kw)


def test_official_layout_round_trip_is_lossless(tmp_path):
    ours = make()
    sd = maeflow.export_state_dict(ours, "mae")
    assert {
        "cls_token",
        "pos_embed",
        "patch_embed.proj.weight",
        "blocks.0.attn.qkv.weight",
        "norm.weight",
        "decoder_embed.weight",
        "mask_token",
        "decoder_pos_embed",
        "decoder_blocks.0.mlp.fc2.bias",
        "decoder_norm.bias",
        "decoder_pred.weight",
    } <= set(sd)
    assert sd["pos_embed"].shape == (1, 1 + ours.tokenizer.num_tokens, 32)
    assert torch.equal(sd["pos_embed"][0, 0], torch.zeros(32))  # the cls slot
    path = tmp_path / "mae_full.pth"
    torch.save({"model": sd}, path)
    again = make()
    for p in again.parameters():
        torch.nn.init.zeros_(p)
    result = maeflow.load_checkpoint(again, path)
    assert result.format == "mae" and not result.missing and not result.unexpected
    for k, v in ours.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_encoder_only_official_file_reports_missing_decoder(tmp_path, caplog):
    ours = make()
    full = maeflow.export_state_dict(ours, "mae")
    sd = {k: v for k, v in full.items() if not k.startswith(("decoder", "mask_token"))}
    path = tmp_path / "mae_pretrain.pth"
    torch.save({"model": sd}, path)
    with caplog.at_level("WARNING"):
        result = maeflow.load_checkpoint(make(), path)
    assert result.format == "mae"
    assert result.missing and all(k.startswith("decoder.") for k in result.missing)
    assert "decoder.mask_token" in result.missing and "decoder.pred.weight" in result.missing
    assert "did not provide" in caplog.text
    with pytest.raises(ValueError, match="strict"):
        maeflow.load_checkpoint(make(), path, strict=True)


def test_shape_mismatch_is_a_clear_error():
    sd = maeflow.export_state_dict(make(embed_dim=64), "mae")
    with pytest.raises(ValueError, match="does not fit the model"):
        maeflow.load_checkpoint(make(), sd)


def test_unrecognized_layout_lists_known_formats():
    with pytest.raises(ValueError, match="known formats: maeflow.*hf.*mae"):
        maeflow.load_checkpoint(make(), {"foo.weight": torch.zeros(2)})


def test_maeflow_format_and_model_from_checkpoint(tmp_path):
    ours = make(mask_ratio=0.5)
    path = maeflow.save_model(ours, tmp_path / "m.pt")
    model, result = maeflow.model_from_checkpoint(path)
    assert result.format == "maeflow" and not result.missing
    assert model.mask_ratio == 0.5 and model.model_name == "mae_vit_test"
    for k, v in ours.state_dict().items():
        assert torch.equal(v, model.state_dict()[k])


def test_loading_refuses_arbitrary_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, path)
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        maeflow.load_checkpoint(make(), path)


def test_safetensors_files_load(tmp_path):
    from maeflow.checkpoint import write_state_dict

    ours = make()
    path = write_state_dict(maeflow.export_state_dict(ours, "mae"), tmp_path / "w.safetensors")
    result = maeflow.load_checkpoint(make(), path)
    assert result.format == "mae" and not result.missing


timm = pytest.importorskip("timm")


def test_timm_export_loads_strictly_into_vit_base():
    ours = make("mae_vit_base_patch16")
    vit = timm.create_model("vit_base_patch16_224", num_classes=0, pretrained=False)
    vit.load_state_dict(maeflow.export_state_dict(ours, "timm"), strict=True)


def test_timm_export_gives_the_same_token_features():
    """With nothing masked, maeflow's encoder and the timm ViT agree token by token: both add a
    zero positional embedding to the cls token and sin-cos tables to the patches."""
    ours = make().eval()
    cfg = ours.config
    vit = timm.models.vision_transformer.VisionTransformer(
        img_size=cfg.img_size, patch_size=cfg.patch_size, in_chans=cfg.in_chans, num_classes=0,
        embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio,
        qkv_bias=True, norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6),
    ).eval()  # fmt: skip
    vit.load_state_dict(maeflow.export_state_dict(ours, "timm"), strict=True)
    x = ours.tokenizer.example_inputs(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = ours.encode(x)  # (B, 1 + L, D)
        b = vit.forward_features(x)
    assert a.shape == b.shape
    assert (a - b).abs().max() < 1e-5
