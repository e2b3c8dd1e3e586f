"""DataLoader construction with the settings pretraining wants: worker processes, pinned memory
on CUDA, persistent workers, seeded shuffling, and an optional sampler (e.g. a
``DistributedSampler``) supplied by the caller."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a worker from torch's per-worker seed, so augmentations that
    use them differ between workers and repeat between runs."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_dataloader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = True,
    num_workers: int = 0,
    pin_memory: bool | None = None,
    persistent_workers: bool | None = None,
    drop_last: bool = False,
    sampler: Sampler | None = None,
    seed: int | None = None,
    collate_fn: Callable | None = None,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """A ``DataLoader`` over ``dataset``.

    ``pin_memory=None`` pins when CUDA is available; ``persistent_workers=None`` keeps workers
    alive between epochs whenever there are any. With ``sampler`` (say a ``DistributedSampler``,
    which shuffles by itself: call its ``set_epoch`` every epoch) ``shuffle`` is ignored.
    ``seed`` fixes the shuffling order and the workers' base seed.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("cannot build a data loader over an empty dataset")
    generator = None
    if seed is not None:
        generator = torch.Generator()
        generator.manual_seed(seed)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    if persistent_workers is None:
        persistent_workers = num_workers > 0
    extra = {}
    if num_workers > 0:
        extra["worker_init_fn"] = seed_worker
        extra["persistent_workers"] = persistent_workers
        if prefetch_factor is not None:
            extra["prefetch_factor"] = prefetch_factor
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        generator=generator,
        collate_fn=collate_fn,
        **extra,
    )
