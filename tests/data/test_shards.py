"""Tar shards: `maeflow shard` writes a dataset's original bytes, `webdataset` reads them back
through the plugin's own codec; order, remainder, resume, bad members, and where shards live."""

import io
import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from maeflow.cli import main
from maeflow.data import SeededItems, ShardedSampler, build_dataloader, build_dataset
from maeflow.data.records import dataset_records
from maeflow.data.shardio import write_shards
from maeflow.data.shards import buffer_shuffle, shard_order


def image_tree(root, per_class=5, classes=("cat", "dog")):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def shard_folder(tmp_path, shard_size=3, **options):
    folder = build_dataset("image_folder", "train", root=str(image_tree(tmp_path / "images")), img_size=16, **options)
    header = {"source": {"dataset": "image_folder", "split": "train", "options": {"img_size": 16, **options}},
              "classes": folder.classes, "num_classes": folder.num_classes}  # fmt: skip
    write_shards(dataset_records(folder), tmp_path / "shards", "train", shard_size, header)
    return folder, tmp_path / "shards"


def test_shards_hold_the_original_bytes_and_decode_like_the_folder(tmp_path):
    folder, out = shard_folder(tmp_path)
    index = json.loads((out / "train.index.json").read_text())
    assert index["num_samples"] == 10 and len(index["shards"]) == 4  # 3 + 3 + 3 + 1
    with tarfile.open(out / "train-000000.tar") as tar:
        names = tar.getnames()
        first = tar.extractfile("000000000.png").read()
        meta = json.loads(tar.extractfile("000000000.json").read())
    assert {"000000000.png", "000000000.cls", "000000000.json"} <= set(names)
    assert first == folder.samples[0][0].read_bytes()  # not re-encoded
    assert meta == {"name": "cat/0.png", "file": "cat/0.png", "class": "cat", "label": 0}
    shards = build_dataset("webdataset", "train", root=str(out), img_size=16, shuffle="global")
    assert len(shards) == len(folder) and shards.classes == ["cat", "dog"] and shards.num_classes == 2
    a, b = SeededItems(folder, 7), SeededItems(shards, 7)
    for i in (0, 4, 9):  # the same augmentation draws: the same tensors
        x, y, *_ = a[(i, i, 0)]
        xs, ys, *_ = b[(i, i, 0)]
        assert y == ys and torch.equal(x, xs)


def test_unknown_option_names_the_codec_options(tmp_path):
    _, out = shard_folder(tmp_path)
    with pytest.raises(ValueError, match="img_sise.*img_size"):
        build_dataset("webdataset", "train", root=str(out), img_sise=16)


def test_corrupt_member_is_skipped_and_counted_or_named_when_strict(tmp_path):
    _, out = shard_folder(tmp_path)
    index = json.loads((out / "train.index.json").read_text())
    key, ext, offset, size, _label, name = index["shards"][1]["samples"][1]  # sample 4
    with open(out / "train-000001.tar", "r+b") as f:  # garbage over the PNG's bytes, tar intact
        f.seek(offset)
        f.write(b"\0" * size)
    ds = build_dataset("webdataset", "train", root=str(out), img_size=16)
    with pytest.warns(RuntimeWarning, match="skipping unreadable"):
        items = [ds[i] for i in range(len(ds))]
    assert len(items) == 10 and ds.num_skipped == 1
    assert ds.skipped[0][0] == f"train-000001.tar:{key}.{ext} ({name})"
    strict = build_dataset("webdataset", "train", root=str(out), img_size=16, strict=True)
    with pytest.raises(ValueError, match=rf"cannot read train-000001.tar:{key}.png \({name}\)"):
        strict[4]
    with pytest.warns(RuntimeWarning, match="skipping unreadable"):
        verified = build_dataset("webdataset", "train", root=str(out), img_size=16, verify=True)
    assert len(verified) == 9 and verified.num_skipped == 1  # found up front, left out


def test_truncated_shard_is_a_bad_sample(tmp_path):
    _, out = shard_folder(tmp_path)
    last = out / "train-000003.tar"
    last.write_bytes(last.read_bytes()[:600])
    ds = build_dataset("webdataset", "train", root=str(out), img_size=16)
    with pytest.warns(RuntimeWarning, match="ends early"):
        ds[9]
    assert ds.num_skipped == 1


def test_pipe_and_fsspec_urls_read_the_same_samples(tmp_path):
    _, out = shard_folder(tmp_path)
    local = build_dataset("webdataset", "train", root=str(out), img_size=16, augment=False)
    piped = build_dataset("webdataset", "train", root=f"pipe:cat {out}/{{name}}", img_size=16, augment=False)
    url = build_dataset("webdataset", "train", root=f"file://{out}", img_size=16, augment=False)
    for i in (0, 5, 9):
        assert torch.equal(local[i][0], piped[i][0]) and torch.equal(local[i][0], url[i][0])
    with pytest.raises(ValueError, match="needs \\{name\\}"):
        build_dataset("webdataset", "train", root=f"pipe:cat {out}/train.index.json")


def test_buffer_shuffle_is_a_seeded_permutation():
    items = list(range(50))
    a = buffer_shuffle(items, 8, np.random.default_rng(1))
    assert sorted(a) == items and a != items
    assert a == buffer_shuffle(items, 8, np.random.default_rng(1))
    # an item leaves the buffer no earlier than `buffer` items before its place in the stream
    assert all(pos >= item - 8 for pos, item in enumerate(a))


@pytest.mark.parametrize("sizes,world,step", [([7, 7, 7, 7], 2, 4), ([10, 3, 8, 1, 6], 2, 6), ([5, 5, 5], 3, 3)])
def test_shard_order_deals_whole_shards_and_drops_less_than_a_step(sizes, world, step):
    starts = np.cumsum([0, *sizes])
    groups = [list(range(starts[i], starts[i + 1])) for i in range(len(sizes))]
    n = sum(sizes)
    usable = n // step * step
    order = shard_order(groups, seed=3, num_replicas=world, usable=usable, buffer=4)
    assert sorted(order) == list(range(n))  # a permutation: every sample placed once
    assert n - usable < step  # the remainder left out this epoch
    shard_of = {i: s for s, g in enumerate(groups) for i in g}
    per_rank = [{shard_of[i] for i in order[r:usable:world]} for r in range(world)]
    # most of a rank's samples come from its own shards: at most one shard shared per rank pair
    overlap = sum(len(per_rank[r] & per_rank[q]) for r in range(world) for q in range(r + 1, world))
    assert overlap <= len(sizes) // 2
    assert order != shard_order(groups, seed=4, num_replicas=world, usable=usable, buffer=4)


def test_resume_mid_epoch_continues_with_the_same_samples(tmp_path):
    _, out = shard_folder(tmp_path)
    ds = build_dataset("webdataset", "train", root=str(out), img_size=16)
    full = ShardedSampler(len(ds), 4, num_replicas=2, rank=1, seed=5, order=ds.epoch_order)
    full.set_epoch(2)
    everything = list(full)
    resumed = ShardedSampler(len(ds), 4, num_replicas=2, rank=1, seed=5, order=ds.epoch_order)
    resumed.set_epoch(2)
    resumed.set_start(2)  # one step of 2 samples on this rank already done
    assert list(resumed) == everything[2:]


def test_loader_delivers_the_sampler_s_samples_with_workers(tmp_path):
    _, out = shard_folder(tmp_path)
    ds = build_dataset("webdataset", "train", root=str(out), img_size=16)
    sampler = ShardedSampler(len(ds), 4, seed=0, order=ds.epoch_order)
    loader = build_dataloader(ds, 2, sampler=sampler, seed=0, num_workers=2, drop_last=True, persistent_workers=False)
    wanted = list(sampler)
    got = [(x, p) for xs, _, ps, _ in loader for x, p in zip(xs, ps.tolist(), strict=True)]
    assert [p for _, p in got] == [p for _, p, _ in wanted]
    direct = SeededItems(ds, 0)
    for (x, _), item in zip(got, wanted, strict=True):
        assert torch.equal(x, direct[item][0])


def test_cli_shards_a_generated_dataset_and_repeats_give_two_clips_per_sample(tmp_path, write_tiny_config):
    cfg = write_tiny_config(model="videomae_vit_test", data="moving_digits")
    assert main(["shard", str(cfg), "data.options.num_samples=40", "-o", str(tmp_path / "md"),
                 "--shard-size", "500"]) == 0  # fmt: skip
    ds = build_dataset("webdataset", "train", root=str(tmp_path / "md"), repeats=2)
    sampler = ShardedSampler(len(ds), 8, seed=0, order=ds.epoch_order)
    inputs, labels, positions, seeds = next(iter(build_dataloader(ds, 8, sampler=sampler, seed=0)))
    assert inputs.shape[0] == 16 and labels.shape == positions.shape == seeds.shape == (16,)
    assert torch.equal(positions[0::2], positions[1::2]) and len(set(seeds.tolist())) == 16
    # two augmentations of one decoded clip: moving digits' augmentation plays it backwards or not
    assert torch.equal(inputs[0], inputs[1]) or torch.equal(inputs[0], inputs[1].flip(1))
    recorded = json.loads((tmp_path / "md" / "train.index.json").read_text())["source"]["options"]
    plain = build_dataset("moving_digits", "train", **{**recorded, "augment": False})
    shard = build_dataset("webdataset", "train", root=str(tmp_path / "md"), augment=False)
    assert len(shard) == 40 and all(torch.equal(plain[i][0], shard[i][0]) for i in (0, 3, 39))


def test_records_of_a_dataset_without_files_fail_clearly():
    with pytest.raises(ValueError, match="cannot be sharded"):
        list(dataset_records(torch.utils.data.TensorDataset(torch.zeros(2))))


def test_npy_records_round_trip():
    buf = io.BytesIO()
    np.save(buf, np.arange(6, dtype=np.float32).reshape(2, 3))
    from maeflow_image.data import load_npy

    assert torch.equal(load_npy(io.BytesIO(buf.getvalue())), torch.arange(6.0).view(2, 3))


def _audio_and_point_files(root):
    import soundfile as sf

    from maeflow_pointcloud.readers import write_ply

    rng = np.random.default_rng(1)
    for i, ext in enumerate(("wav", "flac")):
        (root / "audio" / "a").mkdir(parents=True, exist_ok=True)
        sf.write(root / "audio" / "a" / f"{i}.{ext}", rng.normal(0, 0.1, 4000).astype(np.float32), 8000)
    pc = root / "points" / "a"
    pc.mkdir(parents=True)
    np.save(pc / "0.npy", rng.normal(size=(300, 3)).astype(np.float32))
    write_ply(pc / "1.ply", rng.normal(size=(300, 3)))
    (pc / "2.xyz").write_text("".join(f"{x} {y} {z}\n" for x, y, z in rng.normal(size=(300, 3))))
    (pc / "3.off").write_text("OFF\n4 2 0\n0 0 0\n1 0 0\n0 1 0\n1 1 0\n3 0 1 2\n3 1 3 2\n")
    return {"audio_folder": (root / "audio", {"input_size": [32, 16], "sample_rate": 8000, "stats": [0.0, 1.0]}),
            "pointcloud_folder": (root / "points", {"num_points": 128, "augment": False})}  # fmt: skip


@pytest.mark.parametrize("name", ["audio_folder", "pointcloud_folder"])
def test_audio_and_point_members_decode_in_memory_like_the_folder(tmp_path, monkeypatch, name):
    import maeflow.data.records as records

    root, options = _audio_and_point_files(tmp_path)[name]
    folder = build_dataset(name, "test", root=str(root), **options)
    header = {"source": {"dataset": name, "split": "test", "options": options}, "classes": folder.classes,
              "num_classes": folder.num_classes}  # fmt: skip
    write_shards(dataset_records(folder), tmp_path / "shards", "test", 2, header)
    shards = build_dataset("webdataset", "test", root=str(tmp_path / "shards"), shuffle="global")

    def no_spill(*args, **kwargs):
        raise AssertionError("a shard member was spilled to a temporary file")

    monkeypatch.setattr(records.tempfile, "TemporaryDirectory", no_spill)
    assert len(shards) == len(folder) == (2 if name == "audio_folder" else 4)
    for i in range(len(folder)):  # every format; point clouds seed their sampling by the file name
        x, y, *_ = folder[i]
        xs, ys, *_ = shards[i]
        assert y == ys and torch.equal(x, xs), folder.samples[i][0].name
    assert shards.skipped == []


def test_as_source_gives_a_named_file_object_or_a_temporary_path():
    from maeflow.data.records import as_source

    with as_source(b"abc", "dir/x.ply", needs_path=False) as f:
        assert f.name == "x.ply" and f.read() == b"abc"
    with as_source(b"abc", "dir/x.ply", needs_path=True) as path:  # readers that only open paths
        assert path.name == "x.ply" and path.read_bytes() == b"abc"
    assert not path.exists()  # removed after
