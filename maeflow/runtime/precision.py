"""Numeric precision of a run: one :class:`Precision` gives the autocast context, the compute
dtype and the gradient scaler for ``fp32``, ``bf16`` or ``fp16`` on a device."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """``Precision(name, device)``: ``name`` is ``auto`` (bf16 on CUDA, fp16 where bf16 is
    unsupported, fp32 on the CPU), ``fp32``, ``bf16`` or ``fp16`` (CUDA only).

    ``autocast()`` is the context forward passes run under (none for fp32); weights and the
    optimizer stay fp32. ``scaler`` is a ``torch.amp.GradScaler``, enabled for fp16 only (a
    pass-through otherwise), and belongs to the run: its state goes into checkpoints.
    """

    def __init__(self, name: str, device: torch.device | str):
        self.device = torch.device(device)
        self.name = self.resolve(name, self.device)
        self.dtype = _DTYPES[self.name]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.name == "fp16")

    @staticmethod
    def resolve(name: str, device: torch.device) -> str:
        if name == "auto":
            if device.type == "cuda":
                return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            return "fp32"
        if name not in _DTYPES:
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {name!r}")
        if name == "fp16" and device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA device (train.precision=fp16); use fp32 or bf16 on the CPU")
        return name

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def __repr__(self) -> str:
        return f"Precision({self.name!r}, {str(self.device)!r})"
