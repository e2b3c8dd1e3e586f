"""Every registered test-sized model (from every installed plugin) passes the shipped suite."""

import pytest

import maeflow
from maeflow.testing import check_model

TEST_MODELS = maeflow.list_models("*_test")


def test_there_are_test_models():
    assert "mae_vit_test" in TEST_MODELS


@pytest.mark.parametrize("name", TEST_MODELS)
def test_registered_model_conforms(name):
    check_model(maeflow.create_model(name))


def test_the_suite_catches_a_loss_that_reads_visible_tokens():
    model = maeflow.create_model("mae_vit_test")

    class LeakyLoss:
        def __call__(self, pred, target, mask):
            return ((pred - target) ** 2).mean()

    model.loss_fn = LeakyLoss()
    with pytest.raises(AssertionError, match="depends on visible tokens"):
        check_model(model)


def test_the_suite_catches_a_wrong_token_count():
    model = maeflow.create_model("mae_vit_test")
    model.tokenizer.num_tokens += 1
    with pytest.raises(AssertionError, match="tokens"):
        check_model(model)
