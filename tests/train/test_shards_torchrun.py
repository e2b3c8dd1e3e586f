"""Two torchrun processes (gloo, CPU) over shards of the image and the video demo data: every
sample once per epoch over both ranks (less than one global batch left out, as documented),
loader and resume consistent (checked inside each process, see shard_epochs.py)."""

import json
import socket
import subprocess
import sys
from pathlib import Path

from maeflow.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_see_every_shard_sample_once_per_epoch(tmp_path):
    image, video = tmp_path / "digits", tmp_path / "moving_digits"
    assert main(["shard", str(CONFIGS / "image" / "demo.yaml"), "-o", str(image), "--shard-size", "200"]) == 0
    assert main(["shard", str(CONFIGS / "video" / "demo.yaml"), "data.options.num_samples=150", "-o", str(video),
                 "--shard-size", "40"]) == 0  # fmt: skip
    out = tmp_path / "seen.json"
    script = Path(__file__).with_name("shard_epochs.py")
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(_free_port()),
              str(script), str(out), str(image), str(video)]  # fmt: skip
    done = subprocess.run(launch, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    for root, expected in ((image, 1438), (video, 150)):
        r = result[str(root)]
        assert r["num_samples"] == expected
        usable = expected // 16 * 16  # whole global steps of 2 ranks × 8
        left_out = []
        for epoch, per_rank in r["epochs"].items():
            everything = per_rank[0] + per_rank[1]
            assert len(per_rank[0]) == len(per_rank[1]) == usable // 2
            assert len(set(everything)) == len(everything) == usable, f"{root} epoch {epoch}: a sample seen twice"
            # each rank reads mostly its own shards
            shards = [{k.split(":")[0] for k in keys} for keys in per_rank]
            assert len(shards[0] & shards[1]) <= 1
            left_out.append(expected - usable)
        assert all(n < 16 for n in left_out)
        assert r["epochs"]["0"] != r["epochs"]["1"]  # a new order each epoch
