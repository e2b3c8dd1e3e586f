"""Audio-MAE checkpoints through maeflow.load_checkpoint, with synthetic state dicts."""

import logging

import torch

import maeflow
from maeflow_audio.formats import AudioMAEFormat

# Audio-MAE name ↔ maeflow name, written out independently of the format's rules
NAMES = [
    ("patch_embed.proj.", "tokenizer.proj."),
    ("cls_token", "encoder.cls_token"),
    ("blocks.", "encoder.blocks."),
    ("norm.", "encoder.norm."),
    ("decoder_embed.", "decoder.embed."),
    ("mask_token", "decoder.mask_token"),
    ("decoder_blocks.", "decoder.blocks."),
    ("decoder_norm.", "decoder.norm."),
    ("decoder_pred.", "decoder.pred."),
]


def audiomae_state_dict(model, encoder_only=False):
    """A file as Audio-MAE writes it: the model's weights (randomized) under Audio-MAE's names,
    with its positional tables (cls slot first)."""
    out = {}
    for key, value in model.state_dict().items():
        for ours_prefix in sorted((n for _, n in NAMES), key=len, reverse=True):
            if key.startswith(ours_prefix):
                theirs = next(t for t, o in NAMES if o == ours_prefix)
                out[theirs + key[len(ours_prefix) :]] = torch.randn_like(value)
                break
    enc = model.encoder.pos_embed.table
    out["pos_embed"] = torch.cat([torch.zeros(1, 1, enc.shape[-1]), enc], 1)
    if encoder_only:
        out = {k: v for k, v in out.items() if not k.startswith(("decoder", "mask_token"))}
    else:
        dec = model.decoder.pos_embed.table
        out["decoder_pos_embed"] = torch.cat([torch.zeros(1, 1, dec.shape[-1]), dec], 1)
    return out


def test_full_checkpoint_loads_every_weight():
    model = maeflow.create_model("audiomae_vit_test")
    sd = audiomae_state_dict(model)
    res = maeflow.load_checkpoint(model, {"model": sd})
    assert res.format == "audiomae" and not res.missing and not res.unexpected
    torch.testing.assert_close(model.tokenizer.proj.weight, sd["patch_embed.proj.weight"])
    torch.testing.assert_close(model.decoder.blocks[1].attn.qkv.weight, sd["decoder_blocks.1.attn.qkv.weight"])
    torch.testing.assert_close(model.decoder.mask_token, sd["mask_token"])


def test_encoder_only_checkpoint_reports_the_decoder_missing():
    model = maeflow.create_model("audiomae_vit_test")
    res = maeflow.load_checkpoint(model, {"model": audiomae_state_dict(model, encoder_only=True)})
    assert res.format == "audiomae"
    assert res.missing and all(k.startswith("decoder.") for k in res.missing)
    assert not res.unexpected


def test_local_swin_decoder_is_left_out(caplog):
    model = maeflow.create_model("audiomae_vit_test")
    sd = audiomae_state_dict(model)
    sd["decoder_blocks.0.attn.logit_scale"] = torch.zeros(2, 1, 1)
    before = model.decoder.blocks[0].attn.qkv.weight.clone()
    with caplog.at_level(logging.WARNING):
        res = maeflow.load_checkpoint(model, sd)
    assert "local (Swin-v2) decoder" in caplog.text
    assert torch.equal(model.decoder.blocks[0].attn.qkv.weight, before)
    torch.testing.assert_close(model.encoder.blocks[0].attn.qkv.weight, sd["blocks.0.attn.qkv.weight"])
    assert any(k.startswith("decoder.") for k in res.missing)


def test_other_token_order_is_reported(caplog):
    model = maeflow.create_model("audiomae_vit_test")
    sd = audiomae_state_dict(model)
    table = sd["pos_embed"][:, 1:].reshape(1, 8, 4, -1).transpose(1, 2).reshape(1, 32, -1)  # frequency-major
    sd["pos_embed"] = torch.cat([sd["pos_embed"][:, :1], table], 1)
    with caplog.at_level(logging.WARNING):
        maeflow.load_checkpoint(model, sd)
    assert "pos_embed differs" in caplog.text


def test_detection_is_for_audio_models_only():
    fmt = AudioMAEFormat()
    audio = maeflow.create_model("audiomae_vit_test")
    sd = audiomae_state_dict(audio)
    assert fmt.detect(sd, audio)
    image = maeflow.create_model("mae_vit_test")
    assert not fmt.detect(sd, image)
    res = maeflow.load_checkpoint(image, {"model": {"patch_embed.proj.weight": torch.zeros(32, 3, 8, 8),
                                                    "blocks.0.attn.qkv.weight": torch.zeros(96, 32)}})  # fmt: skip
    assert res.format != "audiomae"


def test_export_round_trip():
    model = maeflow.create_model("audiomae_vit_local_test")
    exported = maeflow.export_state_dict(model, "audiomae")
    assert "patch_embed.proj.weight" in exported and exported["pos_embed"].shape == (1, 33, 32)
    other = maeflow.create_model("audiomae_vit_local_test")
    res = maeflow.load_checkpoint(other, exported, strict=True)
    assert res.format == "audiomae"
    x = torch.randn(1, 1, 64, 32)
    noise = torch.rand(1, 32)
    torch.testing.assert_close(model.eval()(x, noise=noise).pred, other.eval()(x, noise=noise).pred)
