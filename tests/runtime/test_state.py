"""Checkpoint files: atomic writes, fallback to the previous file, refusal of non-finite weights."""

import os

import pytest
import torch

from maeflow.runtime import state as ckpt


def _state(step: int, value: float = 1.0) -> dict:
    return {"format": "maeflow", "model": {"w": torch.full((3,), value)}, "optimizer": {},
            "progress": {"global_step": step}}  # fmt: skip


def test_crash_during_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    ckpt.save_checkpoint(_state(1), tmp_path, 1, keep_last=3)

    def crash(fd):  # the process dies after writing the bytes, before they are made durable
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(_state(2, 2.0), tmp_path, 2, keep_last=3)
    monkeypatch.undo()
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [1]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no half-written leftovers
    path, state = ckpt.find_resumable(tmp_path)
    assert state["progress"]["global_step"] == 1 and torch.equal(state["model"]["w"], torch.ones(3))


def test_damaged_newest_file_falls_back_to_previous(tmp_path, caplog):
    ckpt.save_checkpoint(_state(1), tmp_path, 1, keep_last=3)
    ckpt.save_checkpoint(_state(2, 2.0), tmp_path, 2, keep_last=3)
    # e.g. a disk that filled up while another tool copied the files
    for name in ("step-00000002.pt", "last.pt"):
        (tmp_path / name).unlink()
        (tmp_path / name).write_bytes(b"PK\x03\x04 truncated")
    path, state = ckpt.find_resumable(tmp_path)
    assert path.name == "step-00000001.pt" and state["progress"]["global_step"] == 1
    assert "skipping unreadable checkpoint" in caplog.text


def test_keep_last_and_last_link(tmp_path):
    for step in range(1, 5):
        ckpt.save_checkpoint(_state(step, float(step)), tmp_path, step, keep_last=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [3, 4]
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert last["progress"]["global_step"] == 4


def test_refuses_non_finite_weights(tmp_path):
    ckpt.save_checkpoint(_state(1), tmp_path, 1, keep_last=2)
    with pytest.raises(ValueError, match="non-finite weights"):
        ckpt.save_checkpoint(_state(2, float("nan")), tmp_path, 2, keep_last=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [1]


def test_rng_state_roundtrip_through_weights_only_file(tmp_path):
    import random

    import numpy as np

    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    torch.save(ckpt.rng_state(), tmp_path / "rng.pt")
    expected = (torch.rand(2), random.random(), np.random.rand())
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    ckpt.set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert torch.equal(torch.rand(2), expected[0])
    assert random.random() == expected[1] and np.random.rand() == expected[2]
