"""Two CPU processes (gloo) train like one process with the same effective batch."""

import json
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import maeflow

from .helpers import NoisyImages, ddp_worker, run, settings, tiny_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("engine", ["ddp", pytest.param("fsdp", marks=pytest.mark.slow)])
def test_two_processes_match_one(tmp_path, monkeypatch, engine):
    # spawned children unpickle the worker by module name and take the parent's sys.path
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    single = tmp_path / "single"
    _, reference = run(tiny_model(), NoisyImages(16), settings(single, epochs=2, batch_size=8))

    ddp = tmp_path / "ddp"
    ddp.mkdir()
    # 2 processes × 2 samples × 2 accumulation steps = the single run's batch of 8
    overrides = {"epochs": 2, "batch_size": 4, "accum_iter": 2, "distributed": engine}
    mp.spawn(ddp_worker, args=(2, _free_port(), str(ddp), overrides), nprocs=2, join=True)
    out = json.loads((ddp / "losses.json").read_text())
    assert out["step"] == len(reference) == 4
    torch.testing.assert_close(torch.tensor(out["losses"]), torch.tensor(reference), rtol=0, atol=1e-5)
    # rank 0 alone wrote the log and the checkpoints
    lines = (ddp / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4
    final = torch.load(ddp / "checkpoints" / "last.pt", weights_only=True)
    assert final["progress"]["world_size"] == 2 and len(final["rng"]) == 2
    assert not any(k.startswith("module.") for k in final["model"])
    # a full (unsharded) model in maeflow's format, whichever engine trained it
    model, info = maeflow.model_from_checkpoint(ddp / "checkpoints" / "last.pt")
    assert not info.missing and not info.unexpected
