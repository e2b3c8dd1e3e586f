"""Masking semantics, loss on masked tokens only, the MAE forward contract."""

import pytest
import torch

import maeflow
from maeflow.masking import mask_from_noise, num_visible


def test_224_at_075_keeps_exactly_49_of_196():
    model = maeflow.create_model("mae_vit_base_patch16", depth=1, decoder_depth=1)
    tokens = model.tokenizer(torch.randn(3, 3, 224, 224))
    info = model.masker(tokens, 0.75)
    assert tokens.embeddings.shape[1] == 196
    assert info.ids_keep.shape == (3, 49)
    assert (info.mask.sum(1) == 147).all()


def test_rounding_rules():
    assert num_visible(196, 0.75) == 49
    assert num_visible(512, 0.8) == 102
    assert num_visible(64, 0.6, "mask") == 26 and num_visible(64, 0.6, "keep") == 25
    assert num_visible(10, 0.0) == 10


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_mask_ratio_outside_range_is_rejected(ratio):
    with pytest.raises(ValueError, match=r"mask ratio must be in \[0, 1\)"):
        maeflow.create_model("mae_vit_test", mask_ratio=ratio)
    model = maeflow.create_model("mae_vit_test")
    with pytest.raises(ValueError, match="mask ratio"):
        model(model.tokenizer.example_inputs(1), mask_ratio=ratio)


def test_noise_semantics_small_is_kept():
    noise = torch.tensor([[0.9, 0.1, 0.5, 0.3]])
    info = mask_from_noise(noise, keep=2)
    assert info.ids_keep.tolist() == [[1, 3]]
    assert info.mask.tolist() == [[True, False, True, False]]
    # ids_restore undoes the shuffle [1, 3, 2, 0]
    assert info.ids_restore.tolist() == [[3, 0, 2, 1]]


def test_same_noise_same_mask_and_output():
    model = maeflow.create_model("mae_vit_test").eval()
    x = model.tokenizer.example_inputs(2)
    noise = torch.rand(2, model.tokenizer.num_tokens)
    a, b = model(x, noise=noise), model(x, noise=noise)
    assert torch.equal(a.mask, b.mask) and torch.equal(a.pred, b.pred)
    with pytest.raises(ValueError, match="noise must have shape"):
        model(x, noise=torch.rand(2, 3))


def test_loss_counts_masked_tokens_only():
    model = maeflow.create_model("mae_vit_test")
    out = model(model.tokenizer.example_inputs(2))
    pred = out.pred.detach().clone()
    perturbed = pred.clone()
    perturbed[~out.mask] += 100.0  # change only visible-token predictions
    assert torch.equal(model.loss_fn(pred, out.target, out.mask), model.loss_fn(perturbed, out.target, out.mask))
    perturbed[out.mask] += 1.0
    assert model.loss_fn(perturbed, out.target, out.mask) > model.loss_fn(pred, out.target, out.mask)


def test_loss_is_mean_of_per_patch_mse_over_masked():
    model = maeflow.create_model("mae_vit_test")
    out = model(model.tokenizer.example_inputs(2))
    per_patch = ((out.pred - out.target) ** 2).mean(-1)
    expect = per_patch[out.mask].mean()
    torch.testing.assert_close(out.loss, expect)


def test_norm_pix_targets_are_per_patch_normalized():
    model = maeflow.create_model("mae_vit_test", norm_pix_loss=True)
    out = model(model.tokenizer.example_inputs(2))
    raw = out.tokens.targets
    expect = (raw - raw.mean(-1, keepdim=True)) / (raw.var(-1, keepdim=True, unbiased=True) + 1e-6).sqrt()
    torch.testing.assert_close(out.target, expect)
    off = maeflow.create_model("mae_vit_test", norm_pix_loss=False)
    o2 = off(off.tokenizer.example_inputs(2))
    torch.testing.assert_close(o2.target, o2.tokens.targets)


def test_reconstruct_denormalizes_with_each_patch_statistics():
    model = maeflow.create_model("mae_vit_test", norm_pix_loss=True)
    out = model(model.tokenizer.example_inputs(2))
    out.pred = out.target.clone()  # a perfect prediction in normalized space ...
    torch.testing.assert_close(model.reconstruct(out), out.tokens.targets.float(), atol=1e-5, rtol=1e-5)  # ... is raw


def test_output_fields_and_shapes():
    model = maeflow.create_model("mae_vit_test")
    out = model(model.tokenizer.example_inputs(3))
    L, P = model.tokenizer.num_tokens, model.tokenizer.target_dim
    assert out.loss.ndim == 0
    assert out.pred.shape == out.target.shape == (3, L, P)
    assert out.mask.shape == (3, L) and out.mask.dtype == torch.bool
    assert out.latent.shape == (3, 1 + out.mask_info.num_visible, model.encoder.embed_dim)
    assert model.forward_features(model.tokenizer.example_inputs(3)).shape == (3, model.encoder.embed_dim)


def test_draw_noise_uses_the_generator_device_and_checks_shape():
    from maeflow.masking import draw_noise

    a = draw_noise((2, 5), torch.device("cpu"), generator=torch.Generator().manual_seed(3))
    b = draw_noise((2, 5), torch.device("cpu"), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (2, 5) and (0 <= a).all() and (a < 1).all()
    given = torch.rand(2, 5)
    assert torch.equal(draw_noise((2, 5), torch.device("cpu"), given), given)
    with pytest.raises(ValueError, match=r"noise must have shape \(2, 5\)"):
        draw_noise((2, 5), torch.device("cpu"), torch.rand(5, 2))
