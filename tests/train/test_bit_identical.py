"""Per-step losses on CPU are bit-identical to those recorded on main before the runtime layer
(commit 5379610): the image and point-cloud demos, 2 epochs, with the recorded overrides.

Runs ``maeflow train`` in a fresh process per demo (as the baseline was recorded), so thread
settings or attention choices made by other tests in this process cannot leak in."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASELINE = json.loads((ROOT / "tests" / "data" / "baseline_losses_5379610.json").read_text())


@pytest.mark.parametrize("demo", ["image", "pointcloud"])
def test_demo_losses_match_the_recorded_baseline(demo, tmp_path):
    out = tmp_path / demo
    cmd = [sys.executable, "-m", "maeflow", "train", str(ROOT / "configs" / demo / "demo.yaml"),
           *BASELINE["overrides"], f"run.output_dir={out}"]  # fmt: skip
    paths = [str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["type"] == "train"]
    assert losses == BASELINE["losses"][demo]  # exactly equal, not close
