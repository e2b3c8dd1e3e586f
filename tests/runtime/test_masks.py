"""Mask randomness travels with the batch: one generator per sample draws that sample's row.

The trainer used to mask each sample on its own (one masker call per sample, with a generator
seeded for that sample). Every masker draws exactly one noise tensor through ``draw_noise``, so
per-row generators in one batched call must give bit-identical masks."""

import pytest
import torch

import maeflow
from maeflow.interfaces import MaskInfo
from maeflow.runtime import mask_generators

PRESETS = maeflow.list_models("*_test")


def _one_sample(tokens, i):
    from dataclasses import replace

    B = tokens.embeddings.shape[0]

    def cut(x):
        return x[i : i + 1] if isinstance(x, torch.Tensor) and x.ndim and x.shape[0] == B else x

    return replace(tokens, embeddings=cut(tokens.embeddings), positions=cut(tokens.positions),
                   targets=cut(tokens.targets))  # fmt: skip


@pytest.mark.parametrize("preset", PRESETS)
def test_per_sample_generators_mask_like_per_sample_calls(preset):
    torch.manual_seed(0)
    model = maeflow.create_model(preset)
    B, seeds = 3, [11, 2**62 + 5, 7]
    tokens = model.tokenizer(model.tokenizer.example_inputs(B, generator=torch.Generator().manual_seed(1)))
    batched = model.masker(tokens, model.mask_ratio, generator=mask_generators(seeds, torch.device("cpu")))
    parts = [model.masker(_one_sample(tokens, i), model.mask_ratio, generator=torch.Generator().manual_seed(s))
             for i, s in enumerate(seeds)]  # fmt: skip
    alone = MaskInfo(*(torch.cat([getattr(p, f) for p in parts]) for f in ("ids_keep", "ids_restore", "mask")))
    for field in ("ids_keep", "ids_restore", "mask"):
        assert torch.equal(getattr(batched, field), getattr(alone, field)), field


def test_the_model_passes_per_sample_generators_through():
    torch.manual_seed(0)
    model = maeflow.create_model("mae_vit_test").eval()
    x = model.tokenizer.example_inputs(2, generator=torch.Generator().manual_seed(0))
    a = model(x, generator=mask_generators(torch.tensor([5, 6]), torch.device("cpu")))
    b = model(x, generator=mask_generators([5, 6], torch.device("cpu")))
    assert torch.equal(a.mask, b.mask) and torch.equal(a.loss, b.loss)
    c = model(x[1:], generator=mask_generators([6], torch.device("cpu")))
    assert torch.equal(a.mask[1:], c.mask)  # a sample's mask does not depend on its batch
    with pytest.raises(ValueError, match="2 generators for a batch of 3"):
        model(torch.cat([x, x[:1]]), generator=mask_generators([5, 6], torch.device("cpu")))


def test_mask_generators_forms():
    cpu = torch.device("cpu")
    assert mask_generators(None, cpu) is None
    one = mask_generators(3, cpu)
    assert isinstance(one, torch.Generator) and one.initial_seed() == 3
    assert [g.initial_seed() for g in mask_generators(torch.tensor([1, 2]), cpu)] == [1, 2]
