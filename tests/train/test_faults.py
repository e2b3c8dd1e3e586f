"""Faults during training: a NaN loss in the metrics log, step numbers in messages, a full disk."""

from __future__ import annotations

import errno
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


TINY = """# maeflow train tiny.yaml
model: {name: mae_vit_test}
data: {name: digits, batch_size: 16, num_workers: 0}
train: {epochs: 1, max_steps: 3, ckpt_every_steps: 1, keep_last: 5, log_every: 1, progress: false,
        tensorboard: false, reconstruction: false}
run: {output_dir: OUT}
"""


class _FullDisk:
    """A file whose writes of checkpoint-sized data stop half-way with ENOSPC, as on a full disk."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        if len(data) > 10_000:
            self._f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


@pytest.mark.parametrize("fault", ["write", "torch.save"])
def test_disk_full_while_saving_is_one_line_and_resumable(tmp_path, monkeypatch, capsys, fault):
    import os

    import torch

    from maeflow.cli import main
    from maeflow.runtime.state import list_checkpoints, read_checkpoint

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY.replace("OUT", str(tmp_path / "run")))
    saves = {"n": 0}
    real_fdopen, real_save = os.fdopen, torch.save

    def fdopen(fd, mode="r", *args, **kwargs):  # the second checkpoint hits the full disk
        f = real_fdopen(fd, mode, *args, **kwargs)
        if mode == "wb":
            saves["n"] += 1
            return _FullDisk(f) if saves["n"] >= 2 else f
        return f

    def save(obj, f, *args, **kwargs):
        saves["n"] += 1
        if saves["n"] >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    if fault == "write":
        monkeypatch.setattr(os, "fdopen", fdopen)
    else:
        monkeypatch.setattr(torch, "save", save)
    assert main(["train", str(config)]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    ckpts = tmp_path / "run" / "checkpoints"
    target = ckpts / "step-00000002.pt"
    assert err.startswith(f"maeflow train: error: no space left on the device for checkpoint {target}: the save needs ")
    assert "(step-00000001.pt newest) and last.pt are unchanged" in err and "run the same command again" in err
    needed = float(err.split("the save needs ")[1].split()[0])
    assert needed > 100  # KB: the tiny model with its optimizer state
    assert not [p.name for p in ckpts.iterdir() if p.name.endswith(".tmp")]  # no half-written leftovers
    assert [s for s, _ in list_checkpoints(ckpts)] == [1]
    assert read_checkpoint(ckpts / "last.pt")["progress"]["global_step"] == 1
    assert read_checkpoint(ckpts / "step-00000001.pt")["progress"]["global_step"] == 1
    # space freed: the same command resumes from step 1 and finishes
    assert main(["train", str(config)]) == 0
    assert read_checkpoint(ckpts / "last.pt")["progress"]["global_step"] == 3
