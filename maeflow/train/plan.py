"""How many optimizer steps of what size a pretraining run takes, from its config sections.

One optimizer step consumes ``accum`` micro-batches of ``data.batch_size`` samples summed over
processes (``local_batch`` per process), an effective batch of ``batch_size · accum``; an epoch
is cut to whole steps. The peak learning rate is ``base_lr · effective_batch / 256`` unless
``train.lr`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from maeflow.config import TrainConfig


@dataclass(frozen=True)
class StepPlan:
    accum: int
    local_batch: int
    eff_batch: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    peak_lr: float


def batching(train: TrainConfig, batch_size: int, world: int) -> tuple[int, int]:
    """``(accum, per-process micro-batch)``; clear errors for sizes that do not fit."""
    if batch_size % world:
        raise ValueError(
            f"data.batch_size={batch_size} is not divisible by the {world} processes; "
            f"data.batch_size is the batch per micro-step summed over processes, so use a multiple of {world}"
        )
    accum = train.accum_iter or 1
    if train.effective_batch_size is not None:
        if train.effective_batch_size % batch_size:
            raise ValueError(
                f"train.effective_batch_size={train.effective_batch_size} is not a multiple of "
                f"data.batch_size={batch_size}; gradient accumulation needs whole micro-batches"
            )
        accum = train.effective_batch_size // batch_size
    return accum, batch_size // world


def plan_steps(train: TrainConfig, batch_size: int, world: int, dataset) -> StepPlan:
    """The :class:`StepPlan` for ``dataset`` (map-style, at least one effective batch long)."""
    accum, local_batch = batching(train, batch_size, world)
    eff_batch = batch_size * accum
    try:
        n = len(dataset)
    except TypeError:
        raise ValueError("the training dataset must have a length (a map-style dataset)") from None
    if n == 0:
        raise ValueError("the training dataset is empty: no samples to train on")
    if n < eff_batch:
        raise ValueError(
            f"the training dataset has {n} samples, fewer than one effective batch of {eff_batch} "
            "(data.batch_size × accumulation); lower the batch size"
        )
    steps_per_epoch = n // eff_batch
    total = train.epochs * steps_per_epoch
    if train.max_steps is not None:
        total = min(total, train.max_steps)
    warmup = min(total, round(train.warmup_epochs * steps_per_epoch))
    peak_lr = train.lr if train.lr is not None else train.base_lr * eff_batch / 256
    return StepPlan(accum, local_batch, eff_batch, steps_per_epoch, total, warmup, peak_lr)
