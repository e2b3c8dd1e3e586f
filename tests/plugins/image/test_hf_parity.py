"""Parity with Hugging Face ``ViTMAEForPreTraining``: same weights (converted), same noise,
LayerNorm eps set equal, fp32 on CPU."""

import pytest
import torch

import maeflow

transformers = pytest.importorskip("transformers")
from maeflow_image.hf_twin import build_hf_vitmae, hf_vitmae_settings  # noqa: E402


def compare(name, batch=2, norm_pix_loss=True, **overrides):
    torch.manual_seed(0)
    overrides.setdefault("attention", "math")
    ours = maeflow.create_model(name, norm_pix_loss=norm_pix_loss, **overrides).eval()
    assert hf_vitmae_settings(ours)["norm_pix_loss"] is norm_pix_loss
    hf = build_hf_vitmae(ours, attn_implementation="eager", copy_weights=True).eval()
    x = ours.tokenizer.example_inputs(batch, generator=torch.Generator().manual_seed(1))
    noise = torch.rand(batch, ours.tokenizer.num_tokens, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = ours(x, noise=noise)
        b = hf(pixel_values=x, noise=noise)
    assert torch.equal(a.mask, b.mask.bool())
    torch.testing.assert_close(a.loss, b.loss, rtol=1e-5, atol=0)
    assert (a.pred - b.logits).abs().max() < 1e-4
    return ours, hf


@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_tiny_parity(norm_pix_loss):
    compare("mae_vit_test", norm_pix_loss=norm_pix_loss)


def test_tiny_parity_one_channel_default_attention():
    # Hugging Face's ViTMAE assumes square inputs; non-square inputs are covered in
    # test_tokenizer.py. One channel and the default attention path work on both sides.
    compare("mae_vit_test", in_chans=1, attention="auto")


def test_base_parity():
    compare("mae_vit_base_patch16", batch=1)


def test_round_trip_through_hf():
    ours, hf = compare("mae_vit_test")
    again = maeflow.create_model("mae_vit_test")
    result = maeflow.load_checkpoint(again, hf.state_dict())
    assert result.format == "hf" and not result.missing and not result.unexpected
    for k, v in ours.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_older_hf_names_load():
    """Published HF checkpoint files use the older names (vit.encoder.layer.N.attention.attention.query)."""
    torch.manual_seed(0)
    ours = maeflow.create_model("mae_vit_test")
    fmt = maeflow.registry("checkpoint_format").get("hf")
    old = type(fmt)(generation="old").from_maeflow(ours.state_dict(), ours)
    assert "vit.encoder.layer.0.attention.attention.query.weight" in old
    assert "vit.encoder.layer.0.intermediate.dense.weight" in old
    again = maeflow.create_model("mae_vit_test")
    result = maeflow.load_checkpoint(again, old)
    assert result.format == "hf" and not result.missing and not result.unexpected
    for k, v in ours.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
