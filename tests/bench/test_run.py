"""End-to-end bench runs, test-sized: the shipped CPU smoke config, failures, subprocesses."""

import json
from pathlib import Path

import pytest
from torch.utils.data import Dataset

import maeflow
from maeflow.bench import RESULT_FIELDS, load_config, parse_config, run_bench
from maeflow.plugins import registry

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def small_smoke_config():
    """``configs/bench/cpu_smoke.yaml`` shrunk to a few steps on small data, in this process,
    with the entries whose plugins are installed."""
    _, raw = load_config(REPO / "configs" / "bench" / "cpu_smoke.yaml")
    raw["isolation"], raw["threads"] = "inprocess", 1
    raw["defaults"].update(batch=4, steps=3, warmup=1, loss_window=2)
    raw["defaults"]["probe_options"] = {"batch_size": 128, "linear_epochs": 2}
    entries = []
    for e in raw["entries"]:
        if e["preset"] not in registry("model"):
            continue
        e = {**e, "steps": 3}
        if isinstance(e.get("data"), dict):
            opts = dict(e["data"].get("options", {}))
            for key in ("size", "num_samples", "train_size", "test_size"):  # generated datasets: lengths
                if key in opts:
                    opts[key] = 24
            e["data"] = {**e["data"], "options": opts}
        entries.append(e)
    raw["entries"] = entries
    return parse_config(raw), raw


def test_smoke_config_test_sized_writes_every_file_with_every_field(tmp_path):
    cfg, raw = small_smoke_config()
    run = run_bench(cfg, tmp_path, raw=raw, config_path="configs/bench/cpu_smoke.yaml", progress=False)
    record = json.loads(run.paths["json"].read_text())
    assert record["machine"]["cpu"] and record["machine"]["device"] == "cpu"
    assert "hostname" not in json.dumps(record["machine"]).lower()
    assert {"torch", "timm", "transformers", "xformers", "maeflow"} <= set(record["versions"])
    assert record["git_commit"] and record["config"] == raw and record["date"]
    results = record["results"]
    assert [r["name"] for r in results] == [e.name for e in cfg.entries]
    for r in results:
        assert r["status"] == "ok", r["error"]
        for field in RESULT_FIELDS:
            assert r.get(field) is not None, (r["name"], field)
        for field in ("params", "flops_per_sample", "step_time_ms", "samples_per_s", "tokens_per_s", "tflops",
                      "peak_mem_mb", "final_loss", "baseline_loss"):  # fmt: skip
            assert isinstance(r[field], (int, float)) and r[field] > 0, (r["name"], field, r[field])
        assert 0 < r["visible_tokens_per_sample"] < r["tokens_per_sample"]
        if r["kind"] == "maeflow" and r["preset"] == "mae_vit_test":
            # the synthetic image entry has its HF twin; the one on digits has none (other inputs)
            assert isinstance(r["vs_hf"], float) == (r["data"] == "synthetic"), (r["name"], r["vs_hf"])
        probe = r["probe"]
        if cfg.entries[results.index(r)].probe:
            assert 0 <= probe["knn_top1"] <= 100 and 0 <= probe["random_init_linear_top1"] <= 100
    md = run.paths["md"].read_text()
    for r in results:
        assert r["name"] in md
    assert "vs HF speed (mem)" in md and "cpu" in md.lower()
    assert run.paths["png"].read_bytes()[:8] == PNG_MAGIC


class BrokenDataset(Dataset):
    num_classes = 2

    def __len__(self):
        return 16

    def __getitem__(self, i):
        raise RuntimeError("disk on fire")


def test_a_failing_entry_is_reported_and_the_run_goes_on(tmp_path):
    maeflow.register("dataset", "bench_broken_test", lambda split="train", **kw: BrokenDataset(), override=True)
    cfg = parse_config({
        "device": "cpu", "isolation": "inprocess",
        "defaults": {"batch": 2, "steps": 2, "warmup": 1, "loss_window": 1},
        "entries": [
            {"name": "broken", "preset": "mae_vit_test", "data": {"dataset": "bench_broken_test"}},
            {"name": "fine", "preset": "mae_vit_test"},
        ],
    })  # fmt: skip
    run = run_bench(cfg, tmp_path, progress=False)
    broken, fine = run.results
    assert broken["status"] == "failed" and "RuntimeError: disk on fire" in broken["error"]
    assert broken["samples_per_s"] == "n/a: failed"
    assert fine["status"] == "ok" and fine["samples_per_s"] > 0
    assert "FAILED: RuntimeError: disk on fire" in run.paths["md"].read_text()
    assert run.paths["png"].is_file()


def test_subprocess_isolation_runs_entries_and_contains_a_killed_one(tmp_path):
    cfg = parse_config({
        "device": "cpu", "isolation": "subprocess", "threads": 1,
        "defaults": {"batch": 2, "steps": 2, "warmup": 1, "loss_window": 1},
        "entries": [
            {"name": "too slow", "preset": "mae_vit_test", "timeout_s": 0.05},
            {"name": "fine", "preset": "mae_vit_test"},
        ],
    })  # fmt: skip
    slow, fine = run_bench(cfg, tmp_path, progress=False).results
    assert slow["status"] == "failed" and "timed out after 0.05 s" in slow["error"]
    assert fine["status"] == "ok" and fine["final_loss"] > 0
    assert fine["peak_mem_kind"] == "peak RSS"
    assert (tmp_path / "logs" / "fine.log").is_file()


def test_fp16_is_refused_on_cpu_before_running(tmp_path):
    cfg = parse_config({"device": "cpu", "entries": [{"preset": "mae_vit_test", "precision": "fp16"}]})
    with pytest.raises(ValueError, match="fp16 is for CUDA"):
        run_bench(cfg, tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


def test_a_worker_killed_like_the_oom_killer_is_reported(tmp_path, monkeypatch):
    import sys

    # stand-in for a worker the kernel kills (as the OOM killer does): SIGKILL, no result file
    fake = tmp_path / "killed-worker"
    fake.write_text("#!/bin/sh\necho allocating >&2\nkill -9 $$\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    cfg = parse_config({"device": "cpu", "isolation": "subprocess", "entries": [{"preset": "mae_vit_test"}]})
    (row,) = run_bench(cfg, tmp_path / "run", progress=False).results
    assert row["status"] == "failed"
    assert row["error"].startswith("process killed by SIGKILL (out of memory?)") and "allocating" in row["error"]


def test_the_measured_step_is_the_trainers_step_with_its_mask_seeds(monkeypatch):
    """The bench times the trainer's own optimizer step (the same function object), fed mask
    seeds as the trainer draws them: per sample, from its position in the epoch."""
    import maeflow.train.trainer as trainer
    from maeflow.bench import measure
    from maeflow.data import sample_seed
    from maeflow.runtime import pretrain_step

    assert measure.STEP is pretrain_step and trainer.pretrain_step is pretrain_step
    seen = []

    def spy(model, optimizer, micro_batches, precision, **kwargs):
        micro_batches = list(micro_batches)
        seen.append([s if s is None else [int(v) for v in s] for _, s in micro_batches])
        return pretrain_step(model, optimizer, micro_batches, precision, **kwargs)

    monkeypatch.setattr(measure, "STEP", spy)
    common = {"preset": "mae_vit_test", "batch": 4, "steps": 2, "warmup": 0, "loss_window": 1}
    cfg = parse_config({"entries": [{**common, "data": {"dataset": "digits"}}, {**common, "name": "synthetic"}]})
    digits, synthetic = (measure.run_entry(e, "cpu", 1) for e in cfg.entries)
    assert digits["status"] == synthetic["status"] == "ok"
    # digits: the sampler's positions 0-3 then 4-7 of epoch 0; synthetic: the same positions
    expected = [[[sample_seed(0, 0, 4 * step + i, 1) for i in range(4)]] for step in range(2)]
    assert seen == expected + expected
