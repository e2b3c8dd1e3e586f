"""The optimizer factory (AdamW with MAE's parameter groups, fused kernel, optional layer-wise lr
decay) and the per-iteration warm-up + half-cycle cosine schedule."""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import nn


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """Names of parameters that take no weight decay: the model's own list when it has one
    (``MaskedAutoencoder.no_weight_decay_names``), else biases and other 1-D parameters."""
    if hasattr(model, "no_weight_decay_names"):
        return set(model.no_weight_decay_names())
    return {n for n, p in model.named_parameters() if p.ndim <= 1}


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups: ``decay`` (weight matrices) and ``no_decay`` (biases, norms, tokens,
    positional tables). Frozen parameters are left out. Each group carries its ``names``."""
    skip = no_weight_decay_names(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name in skip else decay).append((name, p))
    groups = [
        {"name": "decay", "params": [p for _, p in decay], "names": [n for n, _ in decay],
         "weight_decay": weight_decay},
        {"name": "no_decay", "params": [p for _, p in no_decay], "names": [n for n, _ in no_decay],
         "weight_decay": 0.0},
    ]  # fmt: skip
    return [g for g in groups if g["params"]]


def resolve_fused(setting: bool | str, device: torch.device) -> bool:
    """Whether AdamW uses its fused kernel. ``auto``: on CUDA and on the CPU, where the fused
    kernel is 3–5× faster than ``foreach`` (measured, 2-core AMD EPYC: ViT-B 62 vs 246 ms per
    step, ``mae_vit_test`` 0.3 vs 1.2 ms); elsewhere (e.g. MPS) ``foreach``."""
    if setting == "auto":
        return device.type in ("cuda", "cpu")
    if isinstance(setting, bool):
        return setting
    raise ValueError(f"fused_optimizer must be auto, true or false, got {setting!r}")


def mae_group_matcher(prefix: str = "") -> dict[str, Any]:
    """timm's ``group_matcher`` for maeflow's module names under ``prefix``: the tokenizer, cls
    token and positional tables are layer 0, ``encoder.blocks.i`` layer ``i + 1``; what matches
    neither (the encoder's final norm, a classification head) is timm's last layer, as in MAE's
    fine-tuning (BEiT's ``get_layer_id_for_vit``)."""
    p = re.escape(prefix)
    return {
        "stem": rf"^{p}(?:tokenizer|encoder\.cls_token|encoder\.pos_embed)",
        "blocks": [(rf"^{p}encoder\.blocks\.(\d+)", None)],
    }


class _Matched:
    """A model seen through a group matcher (what timm's layer-decay grouping reads)."""

    def __init__(self, model: nn.Module, matcher: dict[str, Any]):
        self.model, self.matcher = model, matcher

    def named_parameters(self):
        return self.model.named_parameters()

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return self.matcher


def layer_decay_groups(model: nn.Module, weight_decay: float, layer_decay: float) -> list[dict[str, Any]]:
    """AdamW groups with layer-wise lr decay (BEiT/MAE fine-tuning): timm's
    ``param_groups_layer_decay`` over the model's ``group_matcher`` (default
    :func:`mae_group_matcher`), so layer ``l`` of ``n + 1`` has ``lr_scale = layer_decay ** (n + 1 - l)``
    for an encoder of ``n`` blocks. No decay on :func:`no_weight_decay_names`."""
    from timm.optim import param_groups_layer_decay

    if not hasattr(model, "group_matcher"):
        if not hasattr(getattr(model, "encoder", None), "blocks"):
            raise ValueError("layer_decay needs a model with encoder.blocks (a maeflow MaskedAutoencoder)")
        model = _Matched(model, mae_group_matcher())
        skip = no_weight_decay_names(model.model)
    else:
        skip = no_weight_decay_names(model)
    return param_groups_layer_decay(model, weight_decay, no_weight_decay_list=sorted(skip), layer_decay=layer_decay)


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
    fused: bool | str = False,
    layer_decay: float | None = None,
) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` (or :func:`layer_decay_groups` with ``layer_decay``, where
    each group's ``lr_scale`` multiplies the scheduled lr). ``fused``: PyTorch's fused kernel
    (CUDA and CPU); ``"auto"`` resolves it for the device of the model's parameters
    (:func:`resolve_fused`). Every training loop in maeflow builds its optimizer here."""
    if layer_decay is None:
        groups = param_groups(model, weight_decay)
        for g in groups:
            g.pop("names")  # optimizer state dicts must hold only tensors and primitives
    else:
        groups = layer_decay_groups(model, weight_decay, layer_decay)
    if fused == "auto":
        first = next((p for g in groups for p in g["params"]), None)
        fused = resolve_fused("auto", first.device if first is not None else torch.device("cpu"))
    kwargs = {"fused": True} if resolve_fused(fused, torch.device("cpu")) else {}
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, **kwargs)


class WarmupCosine:
    """Learning rate per optimizer step: linear warm-up from 0 over ``warmup_steps``, then a
    half-cycle cosine from ``peak_lr`` down to ``min_lr`` at ``total_steps`` (MAE's recipe,
    evaluated per iteration rather than per epoch).

    ``lr(s) = peak · s / W`` for ``s < W``; else
    ``min + (peak − min) · ½ · (1 + cos(π · (s − W) / (T − W)))``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer | None, peak_lr: float, total_steps: int,
                 warmup_steps: int = 0, min_lr: float = 0.0):  # fmt: skip
        if total_steps <= 0:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}")
        self.optimizer = optimizer
        self.peak_lr = float(peak_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.min_lr = float(min_lr)
        self.step_count = 0

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.peak_lr * step / self.warmup_steps
        span = self.total_steps - self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / span) if span > 0 else 1.0
        return self.min_lr + (self.peak_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def apply(self) -> float:
        """Set the lr for the upcoming optimizer step on every group; returns it."""
        lr = self.lr_at(self.step_count)
        if self.optimizer is not None:
            for g in self.optimizer.param_groups:
                g["lr"] = lr * g.get("lr_scale", 1.0)
        return lr

    def step(self) -> None:
        self.step_count += 1

    def state_dict(self) -> dict[str, Any]:
        return {"step_count": self.step_count, "peak_lr": self.peak_lr, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "min_lr": self.min_lr}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
