"""The one optimizer step every pretraining loop runs (the trainer, and ``maeflow bench``).

    out = pretrain_step(model, optimizer, [(inputs, mask_seeds)], Precision("auto", device))
    out.loss, out.grad_norm, out.stop

A step is ``accum`` micro-batches of forward + backward under the precision's autocast, with the
gradients reduced across processes on the last micro-batch only, then one all-reduce that
carries the mean loss and the stop flag, then (when the loss is finite everywhere) unscale,
clip, optimizer step, and always ``zero_grad``. The learning-rate schedule is the caller's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from maeflow.runtime.precision import Precision
from maeflow.runtime.strategy import Strategy

MaskSeeds = int | torch.Tensor | Sequence[int] | None


@dataclass(frozen=True)
class StepOutput:
    """What :func:`pretrain_step` did."""

    loss: float  # mean over micro-batches and processes; NaN/inf when any process had one
    grad_norm: float | None  # before clipping, when ``clip_grad`` is set and the step was taken
    stop: bool  # some process asked to stop (the same answer on every process)

    @property
    def finite(self) -> bool:
        """Whether the step was taken (a non-finite loss skips the optimizer update)."""
        return math.isfinite(self.loss)


def mask_generators(seeds: MaskSeeds, device: torch.device) -> torch.Generator | list[torch.Generator] | None:
    """Generators for the masker: one seeded with ``seeds`` (an int: one draw for the batch),
    one per sample (a sequence or 1-D tensor of ints: row ``i`` drawn from generator ``i``), or
    None (the masker draws from the global RNG)."""
    if seeds is None:
        return None
    if isinstance(seeds, int):
        return torch.Generator(device=device).manual_seed(seeds)
    values = seeds.tolist() if isinstance(seeds, torch.Tensor) else list(seeds)
    return [torch.Generator(device=device).manual_seed(int(s)) for s in values]


def pretrain_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    micro_batches: Iterable[tuple[Any, MaskSeeds]],
    precision: Precision,
    *,
    accum: int | None = None,
    strategy: Strategy | None = None,
    clip_grad: float | None = None,
    stop: bool = False,
) -> StepOutput:
    """One optimizer step over ``micro_batches``.

    :param model: what the forward goes through (the strategy's wrapped module, or a plain
        ``MaskedAutoencoder``); ``model(inputs[, generator=...])`` returns an object with a
        scalar ``.loss``.
    :param optimizer: e.g. from :func:`maeflow.runtime.build_optimizer`; its lr is set by the caller.
    :param micro_batches: ``(inputs, mask_seeds)`` pairs; ``inputs`` go to the strategy's device;
        ``mask_seeds`` as :func:`mask_generators` takes them (None: no ``generator`` argument).
        Iterated lazily, one micro-batch at a time.
    :param precision: autocast and gradient scaler (:class:`~maeflow.runtime.Precision`).
    :param accum: the number of micro-batches (default ``len(micro_batches)``); each loss is
        divided by it, so the gradient is the mean over the step's samples.
    :param strategy: single process (default, on ``precision.device``), DDP or FSDP2: gradients
        are synchronized on the last micro-batch only, the loss and ``stop`` reduced over processes.
    :param clip_grad: max gradient norm (after unscaling), or None.
    :param stop: this process asks to stop after this step (reported back in ``StepOutput.stop``
        on every process, so all take the same decision).
    """
    strategy = strategy or Strategy(device=precision.device)
    device = strategy.device
    if accum is None:
        accum = len(micro_batches)  # type: ignore[arg-type]
    scaler = precision.scaler
    loss_sum = torch.zeros((), device=device)
    done = 0
    for inputs, seeds in micro_batches:
        done += 1
        inputs = inputs.to(device, non_blocking=True)
        generator = mask_generators(seeds, device)
        kwargs = {} if generator is None else {"generator": generator}
        with strategy.grad_sync(model, enabled=done == accum):
            with precision.autocast():
                out = model(inputs, **kwargs)
            loss = out.loss.float()
            scaler.scale(loss / accum).backward()
        loss_sum += loss.detach()
        if done == accum:
            break
    if done != accum:
        raise ValueError(f"pretrain_step got {done} micro-batches, expected accum={accum}")
    # one all-reduce carries the loss (NaN anywhere spreads) and the stop flag
    packed = strategy.all_reduce_mean(torch.stack([loss_sum / accum, torch.tensor(float(stop), device=device)]))
    loss_value, stop_any = float(packed[0]), bool(packed[1] > 0)
    grad_norm = None
    if math.isfinite(loss_value):
        if clip_grad is not None:
            scaler.unscale_(optimizer)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad))
        scaler.step(optimizer)
        scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return StepOutput(loss_value, grad_norm, stop_any)
