"""The core's per-token, per-channel target normalization (``channel_patch_norm``, VideoMAE's
targets; any modality whose tokens hold several channels, channel last, can use it)."""

import pytest
import torch

import maeflow
from maeflow import ChannelPatchNormalizer
from maeflow.testing import check_target_normalizer


def test_per_channel_normalization_against_hand_computed_values():
    # one token of 3 values per channel for C = 2, channel last: [r0, g0, r1, g1, r2, g2]
    t = torch.tensor([[[1.0, 10.0, 2.0, 20.0, 6.0, 60.0]]])
    # red 1, 2, 6: mean 3, unbiased var ((−2)² + (−1)² + 3²)/2 = 7; green is ten times red
    s = 7**0.5
    red = [(1 - 3) / (s + 1e-6), (2 - 3) / (s + 1e-6), (6 - 3) / (s + 1e-6)]
    green = [(10 - 30) / (10 * s + 1e-6), (20 - 30) / (10 * s + 1e-6), (60 - 30) / (10 * s + 1e-6)]
    expected = torch.tensor([[[red[0], green[0], red[1], green[1], red[2], green[2]]]])
    norm = ChannelPatchNormalizer(channels=2)
    torch.testing.assert_close(norm.normalize(t), expected)
    torch.testing.assert_close(norm.denormalize(norm.normalize(t), t), t)


def test_eps_is_added_to_the_std_and_a_flat_channel_stays_finite():
    t = torch.tensor([[[5.0, 1.0, 5.0, 3.0]]])  # channel 0 flat, channel 1: 1, 3
    out = ChannelPatchNormalizer(channels=2, eps=0.5).normalize(t)
    # channel 1: mean 2, unbiased std √2, divided by √2 + 0.5 (not √(2 + 0.5))
    torch.testing.assert_close(out[0, 0, 1::2], torch.tensor([-1.0, 1.0]) / (2**0.5 + 0.5))
    torch.testing.assert_close(out[0, 0, 0::2], torch.zeros(2))


def test_differs_from_image_patch_norm_and_ignores_per_channel_affine_input_normalization():
    g = torch.Generator().manual_seed(0)
    t = torch.rand(2, 5, 4 * 3, generator=g)  # 4 values per channel, 3 channels
    norm = ChannelPatchNormalizer(channels=3)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    affine = ((t.reshape(2, 5, 4, 3) - mean) / std).reshape(2, 5, 12)
    torch.testing.assert_close(norm.normalize(affine), norm.normalize(t), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(maeflow.PatchNormalizer().normalize(t), norm.normalize(t), atol=1e-2)
    check_target_normalizer(norm, t)


def test_registered_in_the_core_beside_patch_norm():
    entry = maeflow.registry("target_normalizer").entry("channel_patch_norm")
    assert entry.obj is ChannelPatchNormalizer and entry.plugin == "maeflow"
    assert maeflow.registry("target_normalizer").entry("patch_norm").plugin == "maeflow"


def test_one_channel_is_image_patch_norm_up_to_the_eps_placement():
    g = torch.Generator().manual_seed(1)
    t = torch.rand(2, 3, 16, generator=g)
    torch.testing.assert_close(ChannelPatchNormalizer(channels=1, eps=0.0).normalize(t),
                               maeflow.PatchNormalizer(eps=0.0).normalize(t))  # fmt: skip


def test_channels_must_divide_the_token_and_be_positive():
    with pytest.raises(ValueError, match="not a multiple of the 3 channels"):
        ChannelPatchNormalizer(channels=3).normalize(torch.zeros(1, 2, 8))
    with pytest.raises(ValueError, match="channels must be positive"):
        ChannelPatchNormalizer(channels=0)
