"""Tube masking and random spatiotemporal masking: counts, structure, explicit noise."""

import pytest
import torch

from maeflow import Tokens
from maeflow.testing import check_masker
from maeflow_video import SpacetimeMasker, TubeMasker


def video_tokens(B, layout):
    L = layout[0] * layout[1] * layout[2]
    return Tokens(embeddings=torch.zeros(B, L, 1), positions=None, targets=torch.zeros(B, L, 1), layout=layout)


def test_tube_masking_at_videomae_scale_keeps_160_of_1568():
    tokens = video_tokens(3, (8, 14, 14))
    info = TubeMasker()(tokens, 0.9, generator=torch.Generator().manual_seed(0))
    assert info.ids_keep.shape == (3, 160)  # int(0.9·196) = 176 masked per slot → 20 visible × 8 slots
    assert (info.mask.sum(1) == 1408).all()
    per_slot = info.mask.reshape(3, 8, 196)
    assert (per_slot.sum(-1) == 176).all()
    # the spatial mask is identical in every temporal slot
    assert torch.equal(per_slot, per_slot[:, :1].expand(-1, 8, -1))
    # ... and differs between samples
    assert not torch.equal(per_slot[0, 0], per_slot[1, 0])
    check_masker(TubeMasker(), tokens, 0.9)


def test_tube_masking_explicit_noise_keeps_smallest_spatial_noise():
    tokens = video_tokens(2, (2, 2, 3))  # 6 spatial positions, int(0.5·6) = 3 masked
    noise = torch.tensor([[0.9, 0.1, 0.5, 0.3, 0.8, 0.2], [0.0, 0.6, 0.7, 0.1, 0.2, 0.9]])
    info = TubeMasker()(tokens, 0.5, noise=noise)
    expected = torch.tensor([[True, False, True, False, True, False], [False, True, True, False, False, True]])
    assert torch.equal(info.mask, expected.repeat(1, 2))
    again = TubeMasker()(tokens, 0.5, noise=noise.clone())
    assert torch.equal(again.ids_keep, info.ids_keep) and torch.equal(again.ids_restore, info.ids_restore)
    # visible tokens in token order; ids_restore inverts [visible, masked]
    assert info.ids_keep[0].tolist() == [1, 3, 5, 7, 9, 11]
    order = torch.cat([info.ids_keep, info.mask.nonzero()[:, 1].reshape(2, -1)], dim=1)  # masked in token order
    assert torch.equal(torch.argsort(order, dim=1), info.ids_restore)


def test_tube_masking_noise_shape_and_layout_are_checked():
    tokens = video_tokens(2, (2, 2, 3))
    with pytest.raises(ValueError, match=r"noise must have shape \(2, 6\)"):
        TubeMasker()(tokens, 0.5, noise=torch.rand(2, 12))
    flat = Tokens(embeddings=torch.zeros(2, 12, 1), positions=None, targets=torch.zeros(2, 12, 1), layout=None)
    with pytest.raises(ValueError, match="needs tokens with a"):
        TubeMasker()(flat, 0.5)


@pytest.mark.parametrize("rounding,visible", [("mask", 157), ("keep", 156)])
def test_random_spacetime_counts(rounding, visible):
    tokens = video_tokens(4, (8, 14, 14))
    masker = SpacetimeMasker(rounding=rounding)
    info = masker(tokens, 0.9, generator=torch.Generator().manual_seed(0))
    assert info.ids_keep.shape == (4, visible)
    assert (info.mask.sum(1) == 1568 - visible).all()
    # not tube-structured: slots differ
    per_slot = info.mask.reshape(4, 8, 196)
    assert not torch.equal(per_slot, per_slot[:, :1].expand(-1, 8, -1))
    check_masker(masker, tokens, 0.9)


def test_random_spacetime_explicit_noise_is_reproducible():
    tokens = video_tokens(2, (2, 2, 2))
    noise = torch.rand(2, 8, generator=torch.Generator().manual_seed(3))
    a = SpacetimeMasker()(tokens, 0.75, noise=noise)
    b = SpacetimeMasker()(tokens, 0.75, noise=noise.clone())
    assert torch.equal(a.mask, b.mask) and torch.equal(a.ids_keep, b.ids_keep)
    assert torch.equal(a.ids_keep, torch.argsort(noise, dim=1)[:, :2])
    with pytest.raises(ValueError, match=r"noise must have shape \(2, 8\)"):
        SpacetimeMasker()(tokens, 0.75, noise=torch.rand(2, 4))
