"""Resumable, rank-sharded sampling, per-sample seeding, and the training loader built on them.

Every sample of an epoch has a *global position* in that epoch's permutation. Randomness
that belongs to a sample (its augmentation, its mask) is seeded from ``(seed, epoch,
position)``, so a sample is treated the same whether the run uses 1 process or N, whether the
batch is accumulated from micro-batches, how many loader workers there are, and whether the
run was interrupted and resumed half-way through the epoch.

:func:`build_train_loader` serves both data paths with that sampling and seeding: DataLoader
workers building the inputs, or a dataset's device pipeline (:mod:`maeflow.data.device`) whose
workers load raw items and whose batches are finished on the accelerator.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate
from torch.utils.data.distributed import DistributedSampler

from maeflow.data.device import DeviceBatches, DevicePipeline, offers_device_pipeline

log = logging.getLogger(__name__)


def sample_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (stable across processes and Python versions)."""
    state = np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts]).generate_state(1, np.uint64)
    return int(state[0]) & 0x7FFFFFFFFFFFFFFF


class ShardedSampler(DistributedSampler):
    """PyTorch's ``DistributedSampler`` (same per-epoch permutation: ``randperm`` seeded with
    ``seed + epoch``), extended for training:

    - the epoch is cut to whole global steps (``step_samples`` = effective batch over all
      processes), like ``drop_last``, so every process takes the same number of steps;
    - ``set_start(n)`` skips the first ``n`` samples of this process (mid-epoch resume);
    - items are ``(dataset_index, global_position, epoch)``; rank ``r`` of ``W`` gets
      positions ``r, r + W, r + 2W, ...`` of the permutation.
    """

    def __init__(self, dataset_len: int, step_samples: int, num_replicas: int = 1, rank: int = 0,
                 shuffle: bool = True, seed: int = 0):  # fmt: skip
        super().__init__(range(dataset_len), num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=True)  # fmt: skip
        if step_samples % num_replicas:
            raise ValueError(f"step_samples {step_samples} not divisible by {num_replicas} processes")
        self.dataset_len = dataset_len
        self.step_samples = step_samples
        self.usable = (dataset_len // step_samples) * step_samples
        self.start = 0

    @property
    def steps_per_epoch(self) -> int:
        return self.usable // self.step_samples

    def set_start(self, start: int) -> None:
        self.start = int(start)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            perm = torch.randperm(self.dataset_len, generator=g)[: self.usable].tolist()
        else:
            perm = list(range(self.usable))
        positions = range(self.rank, self.usable, self.num_replicas)
        for pos in positions[self.start :]:
            yield perm[pos], pos, self.epoch

    def __len__(self) -> int:
        return self.usable // self.num_replicas - self.start


class SeededItems(Dataset):
    """Wraps a dataset so item ``(index, position, epoch)`` is produced under RNG states seeded
    from ``(seed, epoch, position)`` (torch, ``random`` and numpy), restored afterwards.
    Returns ``(inputs, label, position)``. The epoch travels with the item (not as an
    attribute) so persistent loader workers see it."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset = dataset
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int, int]) -> tuple[Any, Any, int]:
        index, pos, epoch = item
        s = sample_seed(self.seed, epoch, pos, 0)
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            random.seed(s)
            np.random.seed(s % (1 << 32))
            try:
                sample = self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)
        if isinstance(sample, (tuple, list)):
            inputs = sample[0]
            label = sample[1] if len(sample) > 1 else -1
        else:
            inputs, label = sample, -1
        return inputs, label, pos


class _RawCollate:
    """Collate ``(raw, label, position)`` items of the device path: the raws with the pipeline's
    own ``collate``, labels and positions as the default collate does (a class, so that
    worker processes can pickle it)."""

    def __init__(self, collate: Callable[[list[Any]], Any]):
        self.collate = collate

    def __call__(self, batch: list[tuple[Any, Any, int]]) -> tuple[Any, Any, torch.Tensor]:
        raws, labels, positions = zip(*batch, strict=True)
        return self.collate(list(raws)), default_collate(list(labels)), torch.tensor(positions)


def choose_device_pipeline(
    dataset: Dataset, device: torch.device, setting: bool | str = "auto"
) -> DevicePipeline | None:
    """The dataset's device pipeline when ``setting`` (``data.device_pipeline``) asks for it:
    ``"auto"`` on CUDA when the dataset offers one, ``True`` always (a ``ValueError`` when the
    dataset offers none), ``False`` never."""
    if setting not in ("auto", True, False):
        raise ValueError(f"data.device_pipeline must be auto, true or false, got {setting!r}")
    offered = offers_device_pipeline(dataset)
    if setting is True and not offered:
        raise ValueError(
            f"data.device_pipeline=true but the dataset ({type(dataset).__name__}) offers no device pipeline "
            "(a device_pipeline(device) method, see docs/data.md); use data.device_pipeline=auto or false"
        )
    if setting is False or not offered or (setting == "auto" and device.type != "cuda"):
        return None
    pipeline = dataset.device_pipeline(device)  # type: ignore[attr-defined]
    if len(pipeline.items) != len(dataset):  # type: ignore[arg-type]
        raise ValueError(f"{pipeline.name}: {len(pipeline.items)} raw items for a dataset of {len(dataset)}")
    return pipeline


def build_train_loader(
    dataset: Dataset,
    sampler: Sampler,
    batch_size: int,
    device: torch.device,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool | str = "auto",
    persistent_workers: bool = True,
    prefetch_factor: int | None = None,
    device_pipeline: bool | str = "auto",
    verbose: bool = True,
) -> Iterable[tuple[torch.Tensor, Any, torch.Tensor]]:
    """The training batches ``(inputs, labels, positions)`` over ``sampler`` (a
    :class:`ShardedSampler`: resume and process sharding happen there), every item seeded by
    :class:`SeededItems`. The trainer calls this; so does ``benchmarks/gpu_datapath.py``.

    Two paths (``device_pipeline``, see :func:`choose_device_pipeline`): a ``DataLoader`` whose
    workers build the inputs, or the dataset's device pipeline — workers load raw items, the
    batch is finished on ``device`` (:class:`~maeflow.data.device.DeviceBatches`). ``verbose``
    logs the choice.
    """
    pipeline = choose_device_pipeline(dataset, device, device_pipeline)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs["persistent_workers"] = persistent_workers
        if prefetch_factor is not None:
            kwargs["prefetch_factor"] = prefetch_factor
    if pipeline is None:
        pin = (device.type == "cuda") if pin_memory == "auto" else bool(pin_memory)
        if verbose:
            log.info("data: %d loader workers build the inputs (data.device_pipeline=%s)", num_workers,
                     str(device_pipeline).lower())  # fmt: skip
        return DataLoader(SeededItems(dataset, seed), batch_size=batch_size, sampler=sampler,
                          num_workers=num_workers, pin_memory=pin, drop_last=True, **kwargs)  # fmt: skip
    if verbose:
        log.info("data: %s: %d loader workers load raw items, batches are finished on %s (data.device_pipeline=%s)",
                 pipeline.name, num_workers, device, str(device_pipeline).lower())  # fmt: skip
    raw = DataLoader(SeededItems(pipeline.items, seed), batch_size=batch_size, sampler=sampler,
                     num_workers=num_workers, pin_memory=False, drop_last=True,
                     collate_fn=_RawCollate(pipeline.collate), **kwargs)  # fmt: skip
    return DeviceBatches(raw, pipeline.to_device, device)
