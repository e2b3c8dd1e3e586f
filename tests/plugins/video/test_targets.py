"""VideoMAE's per-tubelet, per-channel target normalization."""

import torch

from maeflow.testing import check_target_normalizer
from maeflow_video import ChannelPatchNormalizer


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
    from maeflow import PatchNormalizer

    assert not torch.allclose(PatchNormalizer().normalize(t), norm.normalize(t), atol=1e-2)
    check_target_normalizer(norm, t)


def test_tubelet_tokens_then_per_channel_stats_group_one_channel_of_one_tubelet():
    # end to end: the tokenizer's (t, row, column, channel) layout and the normalizer's channel
    # split must agree, or the statistics would silently mix channels and positions. Reference:
    # each channel of each 2×2×2 tubelet normalized straight from the clip, by hand.
    from maeflow_video.tokenizer import TubeletTokenizer

    C, T, H, W, t, p = 3, 4, 4, 6, 2, 2
    g = torch.Generator().manual_seed(0)
    # no symmetry: channels on different scales/offsets, every pixel distinct
    x = torch.rand(1, C, T, H, W, generator=g) * torch.tensor([1.0, 5.0, 0.1]).view(1, C, 1, 1, 1)
    x = x + torch.tensor([0.0, -3.0, 7.0]).view(1, C, 1, 1, 1)
    tok = TubeletTokenizer(T, (H, W), t, p, C, embed_dim=8)
    normed = tok.untokenize(ChannelPatchNormalizer(channels=C).normalize(tok.tubeletify(x)))
    expected = torch.empty_like(x)
    for c in range(C):
        for t0 in range(0, T, t):
            for h0 in range(0, H, p):
                for w0 in range(0, W, p):
                    block = x[0, c, t0 : t0 + t, h0 : h0 + p, w0 : w0 + p]
                    vals = block.flatten().tolist()
                    m = sum(vals) / len(vals)
                    sd = (sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5
                    expected[0, c, t0 : t0 + t, h0 : h0 + p, w0 : w0 + p] = (block - m) / (sd + 1e-6)
    torch.testing.assert_close(normed, expected, atol=1e-3, rtol=1e-3)  # fp32; a mix-up is O(1)
    # and the raw token values are the tubelet's pixels, channel last
    first = tok.tubeletify(x)[0, 0].reshape(t, p, p, C)
    torch.testing.assert_close(first.permute(3, 0, 1, 2), x[0, :, :t, :p, :p])
