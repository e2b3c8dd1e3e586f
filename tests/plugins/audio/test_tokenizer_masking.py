"""Token grid and order, and the maskers' counts and reproducibility."""

import numpy as np
import pytest
import torch

import maeflow
from maeflow.testing import check_masker, check_tokenizer
from maeflow_audio import SpectrogramTokenizer, TimeFrequencyMasker


def audiomae_sincos_table(dim: int, grid: tuple[int, int]) -> np.ndarray:
    """Audio-MAE's flexible 2-D sin-cos table, from the published formula: ``meshgrid(w, h)``
    over the (64, 8) patch grid, first half of the channels from the frequency index."""

    def one_d(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    gw, gh = np.meshgrid(np.arange(grid[1], dtype=np.float32), np.arange(grid[0], dtype=np.float32))
    return np.concatenate([one_d(dim // 2, gw), one_d(dim // 2, gh)], axis=1)


def test_grid_order_and_untokenize():
    tok = SpectrogramTokenizer((1024, 128), 16, 8)
    assert tok.grid == (64, 8) and tok.num_tokens == 512 and tok.target_dim == 256
    x = torch.randn(2, 1, 1024, 128)
    t = tok(x)
    assert t.layout == (64, 8) and t.embeddings.shape == (2, 512, 8)
    # time-major: token 8·3 + 5 is time patch 3, frequency patch 5
    torch.testing.assert_close(t.targets[:, 3 * 8 + 5], x[:, 0, 48:64, 80:96].reshape(2, 256))
    torch.testing.assert_close(tok.untokenize(t.targets), x)
    # the patch embedding is a conv over (T, F), flattened the same way
    torch.testing.assert_close(t.embeddings[:, 3 * 8 + 5], tok.proj(x[:, :, 48:64, 80:96])[:, :, 0, 0])


def test_positions_match_audiomae_table():
    model = maeflow.create_model("audiomae_vit_test", input_size=(128, 64), embed_dim=32)
    ours = model.encoder.pos_embed.table[0].numpy()
    np.testing.assert_allclose(ours, audiomae_sincos_table(32, (16, 8)), atol=1e-6)


def test_tokenizer_conformance_and_bad_input():
    tok = SpectrogramTokenizer((64, 32), 8, 16)
    check_tokenizer(tok)
    with pytest.raises(ValueError, match=r"\(B, 1, T, F\)"):
        tok(torch.randn(2, 2, 64, 32))
    with pytest.raises(ValueError, match="input_size"):
        tok(torch.randn(2, 1, 48, 32))
    with pytest.raises(ValueError, match="not divisible"):
        SpectrogramTokenizer((100, 32), 16, 8)


def _tokens(B=3, grid=(64, 8)):
    L = grid[0] * grid[1]
    return maeflow.Tokens(torch.zeros(B, L, 4), None, torch.zeros(B, L, 1), layout=grid)


def test_random_masking_keeps_102_of_512():
    masker = maeflow.registry("masker").get("random")()
    info = masker(_tokens(), 0.8, generator=torch.Generator().manual_seed(0))
    assert info.num_visible == 102 and (info.mask.sum(1) == 410).all()
    noise = torch.rand(3, 512, generator=torch.Generator().manual_seed(1))
    a, b = masker(_tokens(), 0.8, noise=noise), masker(_tokens(), 0.8, noise=noise)
    assert torch.equal(a.ids_keep, b.ids_keep) and torch.equal(a.mask, b.mask)
    assert torch.equal(a.ids_keep, torch.argsort(noise, 1)[:, :102])


def test_time_frequency_counts_and_structure():
    masker = TimeFrequencyMasker(time_ratio=0.6, freq_ratio=0.5)
    info = check_masker(masker, _tokens(), 0.8)
    keep_t, keep_f = int(64 * 0.4), int(8 * 0.5)
    assert (keep_t, keep_f) == (25, 4) and info.num_visible == 100
    grid = info.mask.reshape(3, 64, 8)
    for b in range(3):
        visible_t = (~grid[b]).any(1)  # time positions with any visible token
        visible_f = (~grid[b]).any(0)
        assert visible_t.sum() == keep_t and visible_f.sum() == keep_f
        # a token is visible exactly when its time column and its frequency row are kept
        assert torch.equal(~grid[b], visible_t[:, None] & visible_f[None, :])
    # visible tokens go to the encoder in grid order
    assert (info.ids_keep.diff(dim=1) > 0).all()


def test_time_frequency_ratio_derived_from_mask_ratio():
    masker = TimeFrequencyMasker()
    assert masker.counts((64, 8), 0.75) == (32, 4)  # each axis keeps sqrt(0.25) = half
    info = masker(_tokens(), 0.75, generator=torch.Generator().manual_seed(0))
    assert info.num_visible == 128


def test_time_frequency_explicit_noise():
    masker = TimeFrequencyMasker(0.5, 0.5)
    noise = torch.rand(3, 64 + 8, generator=torch.Generator().manual_seed(0))
    a, b = masker(_tokens(), 0.8, noise=noise), masker(_tokens(), 0.8, noise=noise)
    assert torch.equal(a.mask, b.mask) and torch.equal(a.ids_restore, b.ids_restore)
    # the smallest noise values pick the kept time and frequency positions
    kept_t = torch.argsort(noise[0, :64])[:32]
    kept_f = torch.argsort(noise[0, 64:])[:4]
    expected = torch.ones(64, 8, dtype=torch.bool)
    expected[kept_t[:, None], kept_f[None, :]] = False
    assert torch.equal(a.mask[0].reshape(64, 8), expected)
    with pytest.raises(ValueError, match="noise must have shape"):
        masker(_tokens(), 0.8, noise=torch.rand(3, 512))


def test_time_frequency_needs_a_grid():
    tokens = maeflow.Tokens(torch.zeros(2, 10, 4), None, torch.zeros(2, 10, 1), layout=None)
    with pytest.raises(ValueError, match="layout"):
        TimeFrequencyMasker()(tokens, 0.5)
