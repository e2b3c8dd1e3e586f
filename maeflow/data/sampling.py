"""Resumable, rank-sharded sampling and per-sample seeding for training.

Every sample of an epoch has a *global position* in that epoch's permutation. Randomness
that belongs to a sample (its augmentation, its mask) is seeded from ``(seed, epoch,
position)``, so a sample is treated the same whether the run uses 1 process or N, whether the
batch is accumulated from micro-batches, how many loader workers there are, and whether the
run was interrupted and resumed half-way through the epoch. :func:`maeflow.data.build_dataloader`
applies :class:`SeededItems` whenever its sampler is a :class:`ShardedSampler`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler


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
      positions ``r, r + W, r + 2W, ...`` of the permutation;
    - ``order(seed + epoch, num_replicas, usable)``, when given and shuffling, supplies the
      epoch's permutation instead (a dataset's ``epoch_order``, e.g. shards dealt to ranks;
      None from it: the uniform one).
    """

    def __init__(self, dataset_len: int, step_samples: int, num_replicas: int = 1, rank: int = 0,
                 shuffle: bool = True, seed: int = 0,
                 order: Callable[[int, int, int], Sequence[int] | None] | None = None):  # fmt: skip
        super().__init__(range(dataset_len), num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=True)  # fmt: skip
        if step_samples % num_replicas:
            raise ValueError(f"step_samples {step_samples} not divisible by {num_replicas} processes")
        self.dataset_len = dataset_len
        self.step_samples = step_samples
        self.usable = (dataset_len // step_samples) * step_samples
        self.start = 0
        self.order = order

    @property
    def steps_per_epoch(self) -> int:
        return self.usable // self.step_samples

    def set_start(self, start: int) -> None:
        self.start = int(start)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        custom = None
        if self.shuffle and self.order is not None:
            custom = self.order(self.seed + self.epoch, self.num_replicas, self.usable)
        if custom is not None:
            perm = list(custom)[: self.usable]
            if len(perm) != self.usable:
                raise ValueError(f"the dataset's epoch order has {len(perm)} samples, the epoch needs {self.usable}")
        elif self.shuffle:
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
    Returns ``(inputs, label, position, mask_seed)``: ``mask_seed`` is the sample's own seed for
    its mask (``sample_seed(seed, epoch, position, 1)``), which travels with the batch to the
    training step (:func:`maeflow.runtime.pretrain_step`); with ``repeats`` (a dataset whose
    items hold that many augmented copies) one seed per copy. The epoch travels with the item (not
    as an attribute) so persistent loader workers see it."""

    def __init__(self, dataset: Dataset, seed: int, repeats: int = 1):
        self.dataset = dataset
        self.seed = int(seed)
        self.repeats = int(repeats)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int, int]) -> tuple[Any, Any, int, int]:
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
        mask_seed = sample_seed(self.seed, epoch, pos, 1)
        if self.repeats > 1:  # one mask seed per repeated clip; the first as without repeats
            others = [sample_seed(self.seed, epoch, pos, 1, r) for r in range(1, self.repeats)]
            return inputs, label, pos, torch.tensor([mask_seed, *others], dtype=torch.int64)
        return inputs, label, pos, mask_seed
