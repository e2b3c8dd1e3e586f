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
    lines = [json.loads(x) for x in (ddp / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["type"] == "train" for r in lines) == 4
    final = torch.load(ddp / "checkpoints" / "last.pt", weights_only=True)
    assert final["progress"]["world_size"] == 2 and len(final["rng"]) == 2
    assert not any(k.startswith("module.") for k in final["model"])
    # a full (unsharded) model in maeflow's format, whichever engine trained it
    model, info = maeflow.model_from_checkpoint(ddp / "checkpoints" / "last.pt")
    assert not info.missing and not info.unexpected


@pytest.mark.slow
def test_torchrun_cli(tmp_path):
    """The documented launch: ``torchrun --nproc_per_node=2 -m maeflow train CONFIG``."""
    import subprocess
    import sys

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "# torchrun --nproc_per_node=2 -m maeflow train tiny.yaml\n"
        "model: {name: mae_vit_test}\n"
        "data: {name: digits, batch_size: 16, num_workers: 0}\n"
        "train: {max_steps: 2, log_every: 1, progress: false, tensorboard: false, reconstruction: false}\n"
        f"run: {{output_dir: {tmp_path / 'run'}, threads: 1}}\n"
    )
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(_free_port()),
              "-m", "maeflow", "train", str(cfg)]  # fmt: skip
    ok = subprocess.run(launch, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert ok.stdout.count("checkpoint:") == 1  # rank 0 alone reports
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["type"] == "train" for r in lines) == 2
    bad = subprocess.run([*launch, "data.batch_size=7"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    assert "data.batch_size=7 is not divisible by the 2 processes" in bad.stderr
