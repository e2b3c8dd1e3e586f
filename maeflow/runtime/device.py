"""The device a run uses, its CPU threads, global seeding and compilation: the one resolver every loop calls."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA when available, else the CPU; ``cpu``, ``cuda``, ``cuda:1``, ... as named
    (ValueError for an unknown name, or a CUDA device this machine does not have)."""
    if isinstance(name, torch.device):
        device = name
    elif name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r} ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for, but no CUDA device is available; use auto or cpu")
    return device


def set_threads(threads: int | None) -> None:
    """CPU threads for PyTorch's intra-op work (None: leave PyTorch's default)."""
    if threads is not None:
        torch.set_num_threads(int(threads))


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy and torch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def compile_stacks(model: nn.Module) -> None:
    """``torch.compile`` the transformer stacks only (``encoder`` and ``decoder`` when the model
    has them, else the whole module); tokenizer and masker stay eager. The trainer and
    ``maeflow bench`` compile through this one function, so the bench measures what trains."""
    parts = [getattr(model, p) for p in ("encoder", "decoder") if isinstance(getattr(model, p, None), nn.Module)]
    for part in parts or [model]:
        part.compile()
