"""The trainer on tar shards: the dataset's shard order drives the epoch, and an interrupted,
resumed run gives the uninterrupted run's losses exactly (the resume rule of docs/data.md)."""

import numpy as np
from PIL import Image

from maeflow.data import build_dataset
from maeflow.data.records import dataset_records
from maeflow.data.shardio import write_shards

from .helpers import run, settings, tiny_model


def image_shards(tmp_path, n=24, shard_size=5):
    rng = np.random.default_rng(0)
    (tmp_path / "img" / "a").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "img" / "a" / f"{i:02d}.png")
    folder = build_dataset("image_folder", "train", root=str(tmp_path / "img"), img_size=32)
    header = {"source": {"dataset": "image_folder", "split": "train", "options": {"img_size": 32}}, "classes": ["a"],
              "num_classes": 1}  # fmt: skip
    write_shards(dataset_records(folder), tmp_path / "shards", "train", shard_size, header)
    return build_dataset("webdataset", "train", root=str(tmp_path / "shards"), shuffle_buffer=4)


def test_interrupted_run_on_shards_resumes_with_the_same_samples(tmp_path):
    data = image_shards(tmp_path)  # 24 samples, 5 shards: 3 steps of 8 per epoch
    calls = []
    order = data.epoch_order
    data.epoch_order = lambda *a: calls.append(a) or order(*a)
    _, reference = run(tiny_model(), data, settings(tmp_path / "ref"))
    assert len(reference) == 6 and calls[:2] == [(0, 1, 24), (1, 1, 24)]  # the shard order, each epoch
    out = tmp_path / "interrupted"
    _, l1 = run(tiny_model(), data, settings(out, ckpt_every_epochs=0), stop_at=4)  # mid epoch 1
    _, l2 = run(tiny_model(seed=9), data, settings(out, resume="auto"))
    assert l1 + l2 == reference
