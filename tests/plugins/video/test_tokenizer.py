"""Tubelet tokenizer: token order, target value order, untokenize, positions, clear errors."""

import math

import pytest
import torch

import maeflow
from maeflow_video import TubeletTokenizer
from maeflow_video.tokenizer import video_pos_table, videomae_sincos_1d


def reference_tubelets(x, t, p):
    """Tubelets written out with explicit loops: tokens in (t, h, w) order, values in
    (time, row, column, channel) order."""
    B, C, T, H, W = x.shape
    out = []
    for i in range(T // t):
        for j in range(H // p):
            for k in range(W // p):
                cube = x[:, :, i * t : (i + 1) * t, j * p : (j + 1) * p, k * p : (k + 1) * p]  # (B, C, t, p, p)
                out.append(cube.permute(0, 2, 3, 4, 1).reshape(B, -1))
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("frames,size,t,p,chans", [(8, (16, 24), 2, 8, 3), (6, (8, 8), 3, 4, 1), (4, (8, 16), 1, 8, 2)])
def test_targets_match_reference_and_untokenize_inverts(frames, size, t, p, chans):
    tok = TubeletTokenizer(frames, size, t, p, chans, 16)
    x = torch.randn(2, chans, frames, *size)
    tokens = tok(x)
    assert tokens.layout == (frames // t, size[0] // p, size[1] // p)
    assert tokens.embeddings.shape == (2, tok.num_tokens, 16)
    assert tok.target_dim == t * p * p * chans
    torch.testing.assert_close(tokens.targets, reference_tubelets(x, t, p))
    torch.testing.assert_close(tok.untokenize(tokens.targets), x)


def test_embedding_token_order_matches_target_order():
    # a clip that is non-zero in one tubelet only: exactly that token's embedding differs from the bias
    tok = TubeletTokenizer(4, 16, 2, 8, 1, 8)
    x = torch.zeros(1, 1, 4, 16, 16)
    x[:, :, 2:4, 8:16, 0:8] = 1.0  # temporal slot 1, row 1, column 0 → token 1·4 + 1·2 + 0 = 6
    tokens = tok(x)
    changed = (tokens.embeddings[0] - tok.proj.bias).abs().sum(-1) > 0
    assert changed.nonzero().flatten().tolist() == [6]
    assert tokens.targets[0].abs().sum(-1).nonzero().flatten().tolist() == [6]


def test_videomae_base_geometry():
    tok = TubeletTokenizer(16, 224, 2, 16, 3, 768)
    assert tok.layout == (8, 14, 14) and tok.num_tokens == 1568 and tok.target_dim == 1536
    assert tuple(tok.proj.weight.shape) == (768, 3, 2, 16, 16)


def test_default_positions_are_3d_and_videomae_1d_is_interleaved():
    table = video_pos_table("sincos_3d", 32, (4, 2, 2))
    torch.testing.assert_close(table, maeflow.sincos_3d(32, (4, 2, 2)))
    # VideoMAE's table from its formula: angle(pos, j) = pos / 10000^(2·(j//2)/d); sin on even j, cos on odd j
    d, L = 12, 10
    ref = torch.empty(L, d, dtype=torch.float64)
    for pos in range(L):
        for j in range(d):
            angle = pos / 10000 ** (2 * (j // 2) / d)
            ref[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    torch.testing.assert_close(videomae_sincos_1d(d, L), ref.float())
    torch.testing.assert_close(video_pos_table("sincos_1d", d, (5, 1, 2)), ref.float())
    with pytest.raises(ValueError, match="pos_embed must be one of"):
        video_pos_table("learned", 8, (1, 1, 1))


def test_bad_inputs_raise_one_clear_value_error():
    with pytest.raises(ValueError, match="num_frames 7 is not divisible by the tubelet size 2"):
        maeflow.create_model("videomae_vit_test", num_frames=7)
    with pytest.raises(ValueError, match="not divisible by the patch size 8"):
        maeflow.create_model("videomae_vit_test", img_size=30)
    model = maeflow.create_model("videomae_vit_test")
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\), got \(2, 3, 32, 32\)"):
        model(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        model(torch.randn(1, 2, 3, 8, 32, 32))
    with pytest.raises(ValueError, match="7 frames are not divisible by the tubelet size 2"):
        model(torch.randn(2, 3, 7, 32, 32))
    with pytest.raises(ValueError, match="expected 3 channels, got 1"):
        model(torch.randn(2, 1, 8, 32, 32))
    with pytest.raises(ValueError, match="not divisible by the patch size 8"):
        model(torch.randn(2, 3, 8, 30, 32))
    with pytest.raises(ValueError, match="built for 8 frames of 32x32, got 16 frames of 32x32"):
        model(torch.randn(2, 3, 16, 32, 32))
