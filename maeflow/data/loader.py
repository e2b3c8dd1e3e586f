"""The one DataLoader builder: worker processes, pinned memory on CUDA, persistent workers,
seeded shuffling or a caller's sampler, and the dataset's optional device pipeline.

Training passes a :class:`~maeflow.data.sampling.ShardedSampler` (resume and process sharding
happen there); its items are then seeded per sample (:class:`~maeflow.data.sampling.SeededItems`)
and batches are ``(inputs, labels, positions, mask_seeds)``. Otherwise batches are what the
dataset's items collate to, usually ``(inputs, labels)``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from maeflow.data.device import DeviceBatches, DevicePipeline, offers_device_pipeline
from maeflow.data.sampling import SeededItems, ShardedSampler

log = logging.getLogger(__name__)


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a worker from torch's per-worker seed, so augmentations that
    use them differ between workers and repeat between runs."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class _RawCollate:
    """Collate ``(raw, *rest)`` items of the device path: the raws with the pipeline's own
    ``collate``, the rest (labels, positions, seeds) as the default collate does (a class, so
    that worker processes can pickle it)."""

    def __init__(self, collate: Callable[[list[Any]], Any]):
        self.collate = collate

    def __call__(self, batch: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        raws, *rest = zip(*batch, strict=True)
        return (self.collate(list(raws)), *(default_collate(list(r)) for r in rest))


class _RepeatCollate:
    """Batches of items that each hold ``R`` repeated samples (``dataset.repeats``, e.g.
    VideoMAE's repeated clips): inputs ``(B, R, ...)`` → ``(B·R, ...)``; labels and positions
    repeated per copy, the copies' mask seeds ``(B, R)`` flattened alike."""

    def __init__(self, repeats: int):
        self.repeats = repeats

    def __call__(self, batch: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        inputs, *rest = default_collate(batch)
        out = [inputs.flatten(0, 1)]
        for r in rest:
            out.append(r.flatten(0, 1) if r.dim() == 2 else r.repeat_interleave(self.repeats))
        return tuple(out)


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


def build_dataloader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = True,
    num_workers: int = 0,
    pin_memory: bool | str | None = "auto",
    persistent_workers: bool | None = None,
    drop_last: bool = False,
    sampler: Sampler | None = None,
    seed: int | None = None,
    collate_fn: Callable | None = None,
    prefetch_factor: int | None = None,
    device: torch.device | str | None = None,
    device_pipeline: bool | str = False,
    verbose: bool = False,
) -> Iterable:
    """Batches of ``dataset``: a ``DataLoader``, or the dataset's device pipeline.

    ``pin_memory="auto"`` (or None) pins when ``device`` is CUDA (no ``device``: when CUDA is
    available); ``persistent_workers=None`` keeps workers alive between epochs whenever there
    are any. With ``sampler`` (a ``DistributedSampler``, which shuffles by itself: call its
    ``set_epoch`` every epoch) ``shuffle`` is ignored; ``seed`` fixes the shuffling order and the
    workers' base seed. With a :class:`~maeflow.data.sampling.ShardedSampler` items are seeded
    per sample from ``seed`` (the global RNG is left to the caller: no loader generator), and
    batches are ``(inputs, labels, positions, mask_seeds)``.

    ``device_pipeline`` (``data.device_pipeline``, see :func:`choose_device_pipeline`; default
    off): workers load the dataset's raw items and the batch is finished on ``device``
    (:class:`~maeflow.data.device.DeviceBatches`). ``verbose`` logs which path was taken.

    A dataset with ``repeats`` > 1 (items of ``repeats`` augmented copies of one decoded sample)
    gives batches of ``batch_size × repeats`` inputs, each copy with its own mask seed.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("cannot build a data loader over an empty dataset")
    device = torch.device(device) if device is not None else None
    pipeline = None
    if device_pipeline is not False or device is not None:
        pipeline = choose_device_pipeline(dataset, device or torch.device("cpu"), device_pipeline)
    seeded = isinstance(sampler, ShardedSampler)
    items = dataset if pipeline is None else pipeline.items
    repeats = int(getattr(dataset, "repeats", 1) or 1)
    if seeded:
        items = SeededItems(items, 0 if seed is None else seed, repeats)
    if repeats > 1 and collate_fn is None and pipeline is None:
        collate_fn = _RepeatCollate(repeats)
    if pin_memory in ("auto", None):
        pin_memory = device.type == "cuda" if device is not None else torch.cuda.is_available()
    if persistent_workers is None:
        persistent_workers = num_workers > 0
    extra: dict[str, Any] = {}
    if num_workers > 0:
        extra["persistent_workers"] = persistent_workers
        if not seeded:
            extra["worker_init_fn"] = seed_worker
        if prefetch_factor is not None:
            extra["prefetch_factor"] = prefetch_factor
    generator = torch.Generator().manual_seed(seed) if seed is not None and not seeded else None
    if pipeline is not None:
        collate_fn, pin_memory = _RawCollate(pipeline.collate), False
    loader = DataLoader(items, batch_size=batch_size, shuffle=shuffle if sampler is None else False, sampler=sampler,
                        num_workers=num_workers, pin_memory=bool(pin_memory), drop_last=drop_last,
                        generator=generator, collate_fn=collate_fn, **extra)  # fmt: skip
    if pipeline is None:
        if verbose:
            log.info("data: %d loader workers build the inputs (data.device_pipeline=%s)", num_workers,
                     str(device_pipeline).lower())  # fmt: skip
        return loader
    if verbose:
        log.info("data: %s: %d loader workers load raw items, batches are finished on %s (data.device_pipeline=%s)",
                 pipeline.name, num_workers, device, str(device_pipeline).lower())  # fmt: skip
    return DeviceBatches(loader, pipeline.to_device, device)
