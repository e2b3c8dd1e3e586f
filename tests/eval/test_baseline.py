"""Trivial baselines of the loss: what a model that learned nothing scores, logged by the trainer."""

import torch

import maeflow
from maeflow.eval.baseline import trivial_loss
from maeflow.train.reports import loss_baseline


def test_zero_prediction_baseline_is_the_mean_square_normalized_target_on_masked_tokens():
    torch.manual_seed(0)
    model = maeflow.create_model("mae_vit_test")
    x = torch.randn(4, 3, 32, 32)
    values = trivial_loss(model, x, seed=3)
    out = model(x, generator=torch.Generator().manual_seed(3))  # the same mask as the baseline's
    expected = (out.target**2).mean(-1)[out.mask].mean()
    assert abs(values["zeros"] - float(expected)) < 1e-6
    assert values["best"] == min(values["zeros"], values["mean target"])
    assert 0.5 < values["zeros"] < 1.0  # per-patch normalized targets: about (P - 1) / P


def test_baseline_leaves_global_rng_and_batchnorm_statistics_alone():
    torch.manual_seed(0)
    model = maeflow.create_model("pointmae_test")  # mini-PointNet tokenizer with BatchNorm
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 256, 3)
    torch.manual_seed(7)
    expected_next = torch.rand(3)
    torch.manual_seed(7)
    trivial_loss(model, x, seed=1)
    assert torch.equal(torch.rand(3), expected_next)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert model.tokenizer.training


def test_loss_baseline_is_none_for_a_model_it_does_not_understand():
    assert loss_baseline(torch.nn.Linear(2, 2), [(torch.zeros(2), 0)], torch.device("cpu"), seed=0) is None


def test_reconstruction_vs_trivial_is_repeatable_and_leaves_the_model_and_rng_alone():
    from maeflow.eval.baseline import reconstruction_vs_trivial

    torch.manual_seed(0)
    model = maeflow.create_model("mae_vit_test")
    model.train()
    data = [(torch.randn(3, 32, 32), 0) for _ in range(10)]
    torch.manual_seed(7)
    expected_next = torch.rand(3)
    torch.manual_seed(7)
    first = reconstruction_vs_trivial(model, data, batches=2, batch_size=4, seed=5)
    assert torch.equal(torch.rand(3), expected_next)
    assert model.training
    assert first == reconstruction_vs_trivial(model, data, batches=2, batch_size=4, seed=5)
    assert first["samples"] == 8
    assert first["trivial"] == min(first["zeros"], first["mean target"])
    assert first["ratio"] == first["model_loss"] / first["trivial"]
    assert 0.5 < first["ratio"] < 2.0  # an untrained model: about the trivial loss
