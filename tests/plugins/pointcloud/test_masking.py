"""Random (Point-MAE rounding) and block masking of point groups."""

import pytest
import torch

import maeflow
from maeflow import Tokens
from maeflow.testing import check_masker
from maeflow_pointcloud.masking import BlockMasker


def _tokens(B=3, G=64, generator=None):
    centers = torch.randn(B, G, 3, generator=generator)
    return Tokens(embeddings=torch.zeros(B, G, 8), positions=centers, targets=torch.zeros(B, G, 6))


def test_point_mae_counts_26_visible_of_64(seeded):
    tokens = _tokens(generator=seeded)
    assert maeflow.num_visible(64, 0.6, rounding="mask") == 26
    for masker in (maeflow.RandomMasker(rounding="mask"), BlockMasker()):
        info = check_masker(masker, tokens, 0.6)
        assert info.num_visible == 26 and (info.mask.sum(1) == 38).all()


def test_block_mask_is_the_groups_nearest_the_seed(seeded):
    tokens = _tokens(generator=seeded)
    noise = torch.rand(3, 64, generator=seeded)
    info = BlockMasker()(tokens, 0.6, noise=noise)
    for b in range(3):
        seed = int(noise[b].argmin())
        d = (tokens.positions[b] - tokens.positions[b, seed]).norm(dim=-1)
        assert info.mask[b, seed]
        # every masked group is at least as near the seed as every visible one
        assert d[info.mask[b]].max() <= d[~info.mask[b]].min()
        assert set(d.argsort()[:38].tolist()) == set(info.mask[b].nonzero().flatten().tolist())


def test_explicit_noise_reproduces_the_mask(seeded):
    tokens = _tokens(generator=seeded)
    noise = torch.rand(3, 64, generator=seeded)
    for masker in (maeflow.RandomMasker(rounding="mask"), BlockMasker()):
        a, b = masker(tokens, 0.6, noise=noise), masker(tokens, 0.6, noise=noise.clone())
        assert torch.equal(a.mask, b.mask) and torch.equal(a.ids_keep, b.ids_keep)
    # a seed at the group farthest from the first seed: that group was visible, now it is masked
    first = BlockMasker()(tokens, 0.6, noise=noise)
    seed = int(noise[0].argmin())
    far = int((tokens.positions[0] - tokens.positions[0, seed]).norm(dim=-1).argmax())
    other = noise.clone()
    other[0, far] = -1.0
    second = BlockMasker()(tokens, 0.6, noise=other)
    assert not first.mask[0, far] and second.mask[0, far]
    assert torch.equal(first.mask[1:], second.mask[1:])


def test_model_forward_is_reproducible_with_explicit_noise(seeded):
    model = maeflow.create_model("pointmae_block_test").eval()
    x = model.tokenizer.example_inputs(2, generator=seeded)
    noise = torch.rand(2, model.tokenizer.num_tokens, generator=seeded)
    with torch.no_grad():
        a, b = model(x, noise=noise), model(x, noise=noise)
    assert torch.equal(a.mask, b.mask) and torch.equal(a.loss, b.loss)
    assert a.mask.sum(1).tolist() == [int(0.6 * 16)] * 2


def test_block_masking_needs_positions():
    tokens = Tokens(embeddings=torch.zeros(1, 4, 2), positions=None, targets=torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="positions"):
        BlockMasker()(tokens, 0.5)
