"""Test helpers shipped with maeflow so third-party plugins can check their components."""

from maeflow.testing.conformance import (
    check_loss,
    check_masker,
    check_model,
    check_target_normalizer,
    check_tokenizer,
)
from maeflow.testing.figures import zero_prediction_figure

__all__ = ["check_loss", "check_masker", "check_model", "check_target_normalizer", "check_tokenizer",
           "zero_prediction_figure"]
