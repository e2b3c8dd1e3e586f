"""image_folder's device pipeline (data.device_pipeline) through the trainer's loader, on the CPU.

decode_jpeg runs on the CPU too, so the path the GPU takes (workers read bytes, the batch is
decoded and augmented where the model is) is exercised here with ``device_pipeline=true``.
"""

import io
import logging

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from maeflow.config import load_config
from maeflow.data import DeviceBatches, ShardedSampler, build_dataloader, build_dataset
from maeflow.train import build_trainer

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

CPU = torch.device("cpu")
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def photo(h, w, seed):
    """A smooth (h, w, 3) uint8 image: JPEG-friendly, so decoders differ by little."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, 3, 3, generator=g)
    img = torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)[0]
    return (img.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


@pytest.fixture
def jpegs(tmp_path):
    """12 JPEGs of assorted sizes in two class folders."""
    root = tmp_path / "images"
    for i in range(12):
        folder = root / ("cat" if i % 2 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        Image.fromarray(photo(90 + 5 * i, 128 - 4 * i, i)).save(buf, format="JPEG", quality=95)
        (folder / f"{i:02d}.jpg").write_bytes(buf.getvalue())
    return root


def loader(ds, mode, batch=4, start=0, **kw):
    sampler = ShardedSampler(len(ds), batch, seed=0)
    sampler.set_start(start)
    return build_dataloader(ds, batch, sampler=sampler, drop_last=True, seed=0, device=CPU, device_pipeline=mode, **kw)


def test_device_batches_follow_the_cpu_recipe(jpegs):
    # crop_pct 0.8: the CPU transform resizes the short side to exactly 32 / 0.8 = 40 (as 224 / 0.875
    # = 256), so both crop the same 80% of the short side
    plain = build_dataset("image_folder", root=str(jpegs), img_size=32, augment=False, crop_pct=0.8)
    device, cpu = loader(plain, True), loader(plain, False)
    assert isinstance(device, DeviceBatches) and isinstance(cpu, DataLoader)
    for (x, y, pos, _), (xc, yc, posc, _) in zip(device, cpu, strict=True):
        assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and x.device == CPU
        assert torch.equal(y, yc) and torch.equal(pos, posc)
        # same crop, resize and normalization; in pixels ([0, 1]) they differ by the CPU's uint8
        # rounding and a sub-pixel offset of the crop: about 1/255
        diff = ((x - xc) * STD).abs()
        assert diff.mean() < 0.006 and diff.max() < 0.05

    augmented = build_dataset("image_folder", root=str(jpegs), img_size=32)
    batches = [x for x, *_ in loader(augmented, True)]
    pixels = torch.cat(batches) * STD + MEAN  # normalized: back in [0, 1]
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    again = [x for x, *_ in loader(augmented, True)]
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))  # seeded per sample


def test_resumed_epoch_sees_the_same_remaining_samples(jpegs):
    ds = build_dataset("image_folder", root=str(jpegs), img_size=32)
    full = list(loader(ds, True))
    rest = list(loader(ds, True, start=4))  # resume after the first batch of 4
    assert len(full) == 3 and len(rest) == 2
    for (x, y, pos, _), (xr, yr, posr, _) in zip(full[1:], rest, strict=True):
        assert torch.equal(x, xr) and torch.equal(y, yr) and torch.equal(pos, posr)


def test_loader_workers_change_nothing(jpegs):
    ds = build_dataset("image_folder", root=str(jpegs), img_size=32)
    alone = [x for x, *_ in loader(ds, True)]
    workers = [x for x, *_ in loader(ds, True, num_workers=2, persistent_workers=False)]
    assert all(torch.equal(a, b) for a, b in zip(alone, workers, strict=True))


def test_unreadable_file_is_recorded_or_strict(jpegs):
    bad = jpegs / "cat" / "zz_bad.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg at all")
    ds = build_dataset("image_folder", root=str(jpegs), img_size=32, verify=False, augment=False)
    with pytest.warns(RuntimeWarning, match="zz_bad.jpg"):
        xs = [x for x, *_ in loader(ds, True, batch=13)]
    assert len(xs) == 1 and xs[0].shape[0] == 13 and [p for p, _ in ds.skipped] == [str(bad)]
    strict = build_dataset("image_folder", root=str(jpegs), img_size=32, verify=False, strict=True)
    with pytest.raises(ValueError, match="cannot read .*zz_bad.jpg"):
        list(loader(strict, True, batch=13))


def write_config(tmp_path, root, **data):
    lines = [
        "model: {name: mae_vit_test}",
        f"data: {{name: image_folder, options: {{root: '{root}'}}, batch_size: 4, num_workers: 0, "
        + ", ".join(f"{k}: {v}" for k, v in data.items()) + "}",
        "train: {max_steps: 2, progress: false, tensorboard: false, reconstruction: false, log_every: 1}",
        f"run: {{output_dir: '{tmp_path / 'run'}', resume: never, device: cpu}}",
    ]  # fmt: skip
    path = tmp_path / "c.yaml"
    path.write_text("\n".join(lines) + "\n")
    return load_config(path)


def test_trainer_trains_through_the_device_pipeline(jpegs, tmp_path, caplog):
    cfg = write_config(tmp_path, jpegs, device_pipeline="true")
    trainer = build_trainer(cfg)
    with caplog.at_level(logging.INFO, logger="maeflow.data.loader"):
        result = trainer.fit()
    assert isinstance(trainer.loader, DeviceBatches)
    assert result.global_step == 2 and np.isfinite(result.last_loss)
    assert "JPEG decode + augmentation on the device" in caplog.text

    auto = build_trainer(write_config(tmp_path, jpegs))  # auto on a CPU: the usual workers
    with caplog.at_level(logging.INFO, logger="maeflow.data.loader"):
        assert auto.fit().global_step == 2
    assert isinstance(auto.loader, DataLoader) and "loader workers build the inputs" in caplog.text


def test_true_on_a_dataset_without_one_is_a_clear_error(tmp_path):
    cfg = write_config(tmp_path, "unused", device_pipeline="true")
    cfg.data.name, cfg.data.options = "digits", {}
    with pytest.raises(ValueError, match="offers no device pipeline"):
        build_trainer(cfg).fit()
