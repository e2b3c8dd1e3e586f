"""Faults during training: a NaN loss in the metrics log, step numbers in messages, a full disk."""

from __future__ import annotations

import json
import logging
import math

import pytest

from maeflow.train import NonFiniteLossError
from maeflow.train.logger import MetricsLogger, strict_record

from .helpers import NoisyImages, run, settings, tiny_model


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_metrics_jsonl_is_strict_json_with_nonfinite_flags(tmp_path):
    logger = MetricsLogger(tmp_path, tensorboard=False)
    logger.write({"type": "train", "step": 1, "loss": float("nan"), "lr": float("inf"), "grad_norm": 0.5,
                  "nested": {"a": float("-inf")}, "many": [1.0, float("nan")]}, 1)  # fmt: skip
    logger.close()
    line = (tmp_path / "metrics.jsonl").read_text()
    record = json.loads(line, parse_constant=lambda name: pytest.fail(f"non-strict JSON constant {name}"))
    assert record["loss"] is None and record["loss_nonfinite"] == "nan"
    assert record["lr"] is None and record["lr_nonfinite"] == "inf"
    assert record["nested"] == {"a": None, "a_nonfinite": "-inf"} and record["many"] == [1.0, None]
    assert record["grad_norm"] == 0.5 and "grad_norm_nonfinite" not in record


def test_strict_record_passes_json_dumps_without_nan():
    import torch

    record = strict_record({"loss": torch.tensor(float("nan")), "acc": 1, "ok": True, "name": "x"})
    assert json.dumps(record, allow_nan=False)
    assert record == {"loss": None, "loss_nonfinite": "nan", "acc": 1, "ok": True, "name": "x"}


def test_nan_loss_step_numbers_match_metrics_jsonl(tmp_path, caplog):
    # items 0-3 form step 1 (1-based, as in metrics.jsonl); item 3 is NaN
    s = settings(tmp_path, epochs=1, shuffle=False, batch_size=4, nonfinite="skip")
    with caplog.at_level(logging.WARNING, logger="maeflow.train.trainer"):
        result, losses = run(tiny_model(), NoisyImages(16, nan_at=3), s)
    assert result.skipped_steps == 1 and math.isnan(losses[0])
    warning = next(r.getMessage() for r in caplog.records if "non-finite loss" in r.getMessage())
    assert "at epoch 0, step 1 (lr" in warning
    train = [r for r in _records(tmp_path) if r["type"] == "train"]
    flagged = [r["step"] for r in train if r.get("loss_nonfinite") == "nan"]
    assert flagged == [1] and train[0]["loss"] is None
    assert all(isinstance(r["loss"], float) for r in train[1:])
    for r in _records(tmp_path):
        json.dumps(r, allow_nan=False)


def test_nan_stop_message_names_the_1_based_step(tmp_path):
    s = settings(tmp_path, epochs=1, shuffle=False, batch_size=4)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 0, step 2 \(lr"):
        run(tiny_model(), NoisyImages(16, nan_at=5), s)  # items 4-7: the second step
