"""data.device_pipeline: a dataset's optional device pipeline, chosen by the trainer's loader."""

import logging

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from maeflow.config import load_config
from maeflow.data import DeviceBatches, DevicePipeline
from maeflow.train import Trainer
from maeflow.data import ShardedSampler, build_dataloader

from .helpers import NoisyImages, run, settings, tiny_model


def build_train_loader(data, sampler, batch, device, **kw):
    """The trainer's loader: a ShardedSampler, whole batches."""
    return build_dataloader(data, batch, sampler=sampler, drop_last=True, device=device, **kw)


class RawNoisy(Dataset):
    """The raw items of :class:`PipelinedImages`: the same images, one tenth of the noise (drawn
    in the worker under the per-sample seed), unscaled; the 'device' scales it."""

    def __init__(self, base: NoisyImages):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        return (self.base.images[i], torch.randn(3, 32, 32)), i % 2


def finish(raws, device):
    images = torch.stack([img for img, _ in raws])
    noise = torch.stack([n for _, n in raws])
    return (images + 0.1 * noise).to(device)


class PipelinedImages(NoisyImages):
    """NoisyImages that also offer a device pipeline giving the very same inputs."""

    def __init__(self, n: int = 32):
        super().__init__(n)
        self.calls = 0

    def device_pipeline(self, device):
        self.calls += 1
        return DevicePipeline(items=RawNoisy(self), to_device=finish, name="toy pipeline")


def test_device_path_gives_the_cpu_path_batches_and_losses(tmp_path, caplog):
    data = PipelinedImages(16)
    sampler = ShardedSampler(16, 4, seed=0)
    with caplog.at_level(logging.INFO, logger="maeflow.data.loader"):
        loader = build_train_loader(data, sampler, 4, torch.device("cpu"), seed=3, device_pipeline=True, verbose=True)
    assert isinstance(loader, DeviceBatches) and len(loader) == 4
    assert "toy pipeline" in caplog.text and "device_pipeline=true" in caplog.text
    cpu = build_train_loader(data, sampler, 4, torch.device("cpu"), seed=3, device_pipeline=False)
    assert isinstance(cpu, DataLoader)
    for (x, y, pos, seeds), (xc, yc, posc, seedsc) in zip(loader, cpu, strict=True):
        torch.testing.assert_close(x, xc, rtol=0, atol=1e-6)
        assert torch.equal(y, yc) and torch.equal(pos, posc) and torch.equal(seeds, seedsc)

    _, with_pipeline = run(tiny_model(), data, settings(tmp_path / "a", device_pipeline=True))
    _, without = run(tiny_model(), data, settings(tmp_path / "b", device_pipeline=False))
    assert len(with_pipeline) == 4
    torch.testing.assert_close(torch.tensor(with_pipeline), torch.tensor(without), rtol=0, atol=1e-6)


def test_auto_uses_the_pipeline_on_cuda_only_and_false_never():
    data = PipelinedImages(16)
    sampler = ShardedSampler(16, 4)
    assert isinstance(build_train_loader(data, sampler, 4, torch.device("cpu"), device_pipeline="auto"), DataLoader)
    assert isinstance(build_train_loader(data, sampler, 4, torch.device("cuda"), device_pipeline=False), DataLoader)
    # auto on CUDA takes it (the loader is built lazily: nothing touches the GPU here)
    assert isinstance(build_train_loader(data, sampler, 4, torch.device("cuda"), device_pipeline="auto"), DeviceBatches)
    assert data.calls == 1


def test_true_needs_a_dataset_that_offers_one(tmp_path):
    t = Trainer(tiny_model(), NoisyImages(16), **settings(tmp_path, device_pipeline=True))
    with pytest.raises(ValueError, match="data.device_pipeline=true but the dataset .NoisyImages. offers no device"):
        t._setup()
    with pytest.raises(ValueError, match="auto, true or false"):
        build_train_loader(NoisyImages(16), ShardedSampler(16, 4), 4, torch.device("cpu"), device_pipeline="yes")


def test_interrupted_and_resumed_device_path_gives_the_same_losses(tmp_path):
    data = PipelinedImages(24)  # 3 steps per epoch, 2 epochs
    _, reference = run(tiny_model(), data, settings(tmp_path / "ref", device_pipeline=True))
    out = tmp_path / "run"
    first, l1 = run(tiny_model(), data, settings(out, ckpt_every_epochs=0, device_pipeline=True), stop_at=2)
    assert first.global_step == 2
    _, l2 = run(tiny_model(seed=7), data, settings(out, resume="auto", device_pipeline=True))
    assert l1 + l2 == reference


def test_config_key_reaches_the_trainer(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {name: mae_vit_test}\ndata: {name: digits}\n")
    assert load_config(cfg).data.device_pipeline == "auto"
    c = load_config(cfg, ["data.device_pipeline=true", "data.batch_size=8", "data.num_workers=0",
                          f"run.output_dir={tmp_path / 'run'}"])  # fmt: skip
    with pytest.raises(ValueError, match="offers no device pipeline"):  # the trainer's loader got the key
        Trainer(tiny_model(), NoisyImages(16), c.train, c.data, c.run, c.eval)._setup()
    with pytest.raises(ValueError, match="device_pipeline"):
        load_config(cfg, ["data.device_pipeline=sometimes"])
