"""How a run spans processes: one process, DDP or FSDP2, launched by ``torchrun``.

``torchrun --nproc_per_node=N -m maeflow train CONFIG`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and ``MASTER_ADDR/PORT``; :meth:`Strategy.from_env` joins that process group
(NCCL on CUDA, gloo on CPU). A plain ``python -m maeflow train`` is a world of one, where every
collective below is a no-op.

:class:`Strategy` is the only place that knows DDP from FSDP: it wraps the model, turns the
gradient synchronisation of accumulation micro-steps off and on, and reads and writes *full*
(unsharded) model and optimizer state dicts.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def info() -> DistInfo:
    """The current process group (world of one when none is initialized)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group described by torchrun's environment variables, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or dist.is_initialized():
        return info()
    if not dist.is_available():
        raise ValueError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    if device_type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return info()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


class Strategy:
    """Single process, DDP or FSDP2 over the current process group.

    :param kind: ``"ddp"`` or ``"fsdp"`` (``train.distributed``); used only when the world has
        more than one process.
    :param device: this process's device (``cuda`` becomes ``cuda:<local rank>`` under a group).
    """

    def __init__(self, kind: str = "ddp", device: torch.device | str = "cpu", dist_info: DistInfo | None = None):
        if kind not in ("ddp", "fsdp"):
            raise ValueError(f"distributed must be ddp or fsdp, got {kind!r}")
        self.dist = dist_info or info()
        self.kind = kind if self.dist.enabled else "single"
        device = torch.device(device)
        if self.dist.enabled and device.type == "cuda":
            device = torch.device("cuda", self.dist.local_rank)
        self.device = device

    @classmethod
    def from_env(cls, kind: str, device: torch.device) -> Strategy:
        """Join torchrun's process group (if any) and return the strategy for it."""
        return cls(kind, device, init_from_env(device.type))

    @property
    def fsdp(self) -> bool:
        return self.kind == "fsdp"

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def world_size(self) -> int:
        return self.dist.world_size

    # ----------------------------------------------------------------- model

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the forward passes go through. FSDP2 shards every transformer block, then
        the rest, in place (parameters become DTensors: build the optimizer after this)."""
        if self.kind == "single":
            return model
        if self.kind == "fsdp":
            from torch.distributed.fsdp import fully_shard

            for part in ("encoder", "decoder"):
                for block in getattr(getattr(model, part, None), "blocks", []):
                    fully_shard(block)
            fully_shard(model)
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    @staticmethod
    def unwrap(wrapped: nn.Module) -> nn.Module:
        return getattr(wrapped, "module", wrapped)

    @contextlib.contextmanager
    def grad_sync(self, wrapped: nn.Module, enabled: bool) -> Iterator[None]:
        """Backward passes inside reduce gradients across processes only when ``enabled`` (the
        last micro-batch of an optimizer step): DDP ``no_sync``, FSDP2 ``set_requires_gradient_sync``."""
        if self.kind == "ddp" and not enabled:
            with wrapped.no_sync():
                yield
            return
        if self.kind == "fsdp":
            wrapped.set_requires_gradient_sync(enabled)
        yield

    # ----------------------------------------------------------------- state

    def model_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The full model state dict on the CPU (collective under FSDP: call on every rank)."""
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return {k: v.detach().cpu() for k, v in self.unwrap(model).state_dict().items()}

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            return get_optimizer_state_dict(model, optimizer, options=opts)
        return optimizer.state_dict()

    def load_state(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, model_state: dict[str, Any],
                   optimizer_state: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Load full state dicts (as :meth:`model_state` / :meth:`optimizer_state` give them)."""
        if self.fsdp:
            from torch.distributed.checkpoint import state_dict as sd

            opts = sd.StateDictOptions(full_state_dict=True, broadcast_from_rank0=False)
            sd.set_model_state_dict(model, model_state, options=opts)
            if optimizer is not None and optimizer_state is not None:
                sd.set_optimizer_state_dict(model, optimizer, optimizer_state, options=opts)
            return
        self.unwrap(model).load_state_dict(model_state)
        if optimizer is not None and optimizer_state is not None:
            optimizer.load_state_dict(optimizer_state)

    # ----------------------------------------------------------------- collectives

    def all_reduce_mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean of ``t`` over processes, in place (NaN anywhere spreads everywhere)."""
        if self.dist.enabled:
            dist.all_reduce(t)
            t /= self.dist.world_size
        return t

    def gather_object(self, obj: Any) -> list[Any]:
        """``obj`` of every process, in rank order, on every process."""
        if not self.dist.enabled:
            return [obj]
        out: list[Any] = [None] * self.dist.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        barrier()
