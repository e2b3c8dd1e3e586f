"""The modality-free display helpers the figure plugins share."""

import dataclasses

import numpy as np
import torch

import maeflow
from maeflow.visualize import to_display


def test_to_display_unnormalizes_clamps_and_greys_hidden_pixels():
    img = torch.tensor([[[0.0, 2.0], [-2.0, 1.0]]])  # (1, 2, 2), normalized with mean 0.5, std 0.25
    hidden = torch.tensor([[[False, False], [False, True]]])
    out = to_display(img, [0.5], [0.25], hidden, fill=0.3)
    np.testing.assert_allclose(out, [[0.5, 1.0], [0.0, 0.3]])  # 0.5+2*0.25=1.0, -2 → 0 (clamped)
    rgb = to_display(torch.zeros(3, 4, 5))
    assert rgb.shape == (4, 5, 3)
    assert to_display(torch.zeros(2, 4, 5)).shape == (4, 5)


def _output_with(model, x, pred):
    with torch.no_grad():
        out = model(x, generator=torch.Generator().manual_seed(1))
    return dataclasses.replace(out, pred=pred(out))


def test_global_denormalize_borrows_nothing_from_the_original_patches():
    import pytest

    from maeflow.visualize import reconstruct_tokens
    from maeflow_video.targets import ChannelPatchNormalizer

    model = maeflow.create_model("mae_vit_test").eval()
    x = model.tokenizer.example_inputs(2, generator=torch.Generator().manual_seed(0))
    zero = _output_with(model, x, lambda o: torch.zeros_like(o.pred))
    # the reference way: a zero prediction comes back as each patch's true mean — a blocky picture
    patch = reconstruct_tokens(model, zero, "patch", channels=3)
    torch.testing.assert_close(patch, model.reconstruct(zero))
    assert patch.std(dim=(0, 1)).min() > 0.02  # the patch means of random inputs differ
    raw = zero.tokens.targets.reshape(-1, 3)
    # the average of the tokens' means: over all values for image MAE's targets, per channel for VideoMAE's
    for normalizer, colour in ((maeflow.PatchNormalizer(), raw.mean().expand(3)),
                               (ChannelPatchNormalizer(channels=3), raw.mean(0))):  # fmt: skip
        model.target_normalizer = normalizer
        flat = reconstruct_tokens(model, zero, "global", channels=3)  # (B, L, p·p·3), channel last
        per_channel = flat.reshape(-1, 3)
        torch.testing.assert_close(per_channel, per_channel[:1].expand_as(per_channel))  # one colour everywhere
        torch.testing.assert_close(per_channel[0], colour, atol=1e-4, rtol=1e-4)
        # and a real prediction gets one common scale per channel, not each patch's own
        good = dataclasses.replace(zero, pred=normalizer.normalize(zero.tokens.targets))
        shown = reconstruct_tokens(model, good, "global", channels=3)
        assert not torch.allclose(shown, zero.tokens.targets.float(), atol=1e-2)
    with pytest.raises(ValueError, match="denormalize"):
        reconstruct_tokens(model, zero, "own")


def test_caption_always_names_the_mode():
    from maeflow.visualize import denormalize_note

    model = maeflow.create_model("mae_vit_test")
    assert "denormalize=patch" in denormalize_note(model, True, "patch")[0]
    assert "borrowed from the original" in denormalize_note(model, True, "patch")[0]
    assert "denormalize=global" in denormalize_note(model, True, "global", unit="tubelet")[0]
    assert "all tubelets" in denormalize_note(model, True, "global", unit="tubelet")[0]
    assert denormalize_note(model, False, "patch") == []  # no predictions shown, nothing to say
    model.target_normalizer = maeflow.IdentityNormalizer()
    assert "as predicted" in denormalize_note(model, True, "global")[0]
