"""VideoMAE's per-tubelet, per-channel target normalization: the tubelet layout against the
core's ``ChannelPatchNormalizer`` (its own unit tests are in tests/core/test_targets.py)."""

import torch

import maeflow
from maeflow_video import ChannelPatchNormalizer


def test_the_video_plugin_uses_the_core_normalizer():
    from maeflow_video.targets import ChannelPatchNormalizer as from_targets

    assert ChannelPatchNormalizer is from_targets is maeflow.ChannelPatchNormalizer
    model = maeflow.create_model("videomae_vit_test", in_chans=2, target_norm="channel_patch_norm")
    assert isinstance(model.target_normalizer, ChannelPatchNormalizer) and model.target_normalizer.channels == 2


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
