"""Test helpers shipped with maeflow so third-party plugins can check their components."""

from maeflow.testing.conformance import (
    check_loss,
    check_masker,
    check_model,
    check_target_normalizer,
    check_tokenizer,
)

__all__ = ["check_loss", "check_masker", "check_model", "check_target_normalizer", "check_tokenizer"]
