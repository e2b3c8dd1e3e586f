"""Trivial baselines of the reconstruction loss: what a model that learned nothing scores.

A pretraining loss means little alone: with per-token normalized targets, predicting zero (each
token's own mean) already scores about 1, and a loss of 0.9 may be learning or noise. These
functions give the loss of predictions that use nothing of the visible tokens, on the same
batch, mask and loss as the model, so logs can show the two side by side.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def trivial_baselines(loss_fn, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """The loss of two constant predictions on the same batch and mask, through the model's own
    loss: ``zeros`` (for per-token normalized targets: the mean of target² over masked tokens)
    and ``mean target`` (every token predicted as the mean masked target of the batch: for point
    groups, the mean group). A model that learned nothing scores about the lower of the two."""
    m = mask.to(torch.bool)
    t = target.float()
    mean = t[m].mean(dim=0) if m.any() else t.flatten(0, 1).mean(dim=0)  # (P,) or the token's trailing shape
    return {
        "zeros": loss_fn(torch.zeros_like(pred, dtype=torch.float32), t, mask).float(),
        "mean target": loss_fn(mean.expand_as(t).contiguous(), t, mask).float(),
    }


def baseline_pred_fn(model: nn.Module):
    """The model's (or its loss's) own ``baseline_pred(target, mask) -> pred``, if it declares one."""
    for owner in (model, getattr(model, "loss_fn", None)):
        fn = getattr(owner, "baseline_pred", None)
        if callable(fn):
            return fn
    return None


def baseline_losses(model: nn.Module, pred: torch.Tensor, target: torch.Tensor,
                    mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """:func:`trivial_baselines` through ``model.loss_fn``, plus the loss of the model's own
    ``baseline_pred(target, mask)`` when it (or its loss) declares one."""
    out = trivial_baselines(model.loss_fn, pred, target, mask)
    fn = baseline_pred_fn(model)
    if fn is not None:
        out["baseline_pred"] = model.loss_fn(fn(target, mask), target, mask)
    return out


@torch.no_grad()
def trivial_loss(model: nn.Module, inputs: torch.Tensor, seed: int = 0) -> dict[str, Any]:
    """Trivial baselines of ``model``'s loss on ``inputs``: the model's own tokenizer, a mask
    drawn from a generator seeded with ``seed``, its target normalizer and loss, without the
    encoder or decoder. Returns ``{"zeros": ..., "mean target": ..., ["baseline_pred": ...],
    "best": min}`` as floats.

    The global RNG is left as it was and the tokenizer runs in eval mode (no BatchNorm
    statistics move), so calling this does not change a training run."""
    tokenizer = model.tokenizer
    was_training = tokenizer.training
    devices = [inputs.device] if inputs.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        tokenizer.eval()
        try:
            tokens = tokenizer(inputs)
        finally:
            tokenizer.train(was_training)
        generator = torch.Generator(device=inputs.device).manual_seed(seed)
        mask = model.masker(tokens, model.mask_ratio, generator=generator).mask
        target = model.target_normalizer.normalize(tokens.targets)
        out = baseline_losses(model, target, target, mask)
    values = {k: float(v) for k, v in out.items()}
    values["best"] = min(values.values())
    return values


@torch.no_grad()
def reconstruction_vs_trivial(model: nn.Module, dataset, batches: int = 4, batch_size: int = 64,
                              seed: int = 1234) -> dict[str, Any]:  # fmt: skip
    """The trained ``model``'s reconstruction loss next to its trivial baselines on the same
    ``batches`` x ``batch_size`` items of ``dataset`` (a pretraining split, augmented as in
    training), the same masks and its own target normalizer and loss.

    Items and masks are drawn from ``seed`` inside ``torch.random.fork_rng``: the same numbers on
    every call, and the caller's RNG state is left as it was. The model runs in eval mode (no
    stochastic depth) on its own device and is put back into the mode it was in.

    Returns ``{"model_loss", "zeros", "mean target", ["baseline_pred"], "trivial" (the lowest
    baseline), "trivial_name", "ratio" (model_loss / trivial), "samples"}``."""
    from maeflow.eval.features import model_device

    if batches < 1 or batch_size < 1:
        raise ValueError(f"batches and batch_size must be positive, got {batches} and {batch_size}")
    device = model_device(model)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=g)[: batches * batch_size].tolist()
    if not order:
        raise ValueError("cannot measure the reconstruction loss on an empty dataset")
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for b in range(0, len(order), batch_size):
                x = torch.stack([torch.as_tensor(dataset[i][0]) for i in order[b : b + batch_size]]).to(device)
                out = model(x)
                losses = {"model_loss": out.loss, **baseline_losses(model, out.pred, out.target, out.mask)}
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v) * x.shape[0]
    finally:
        model.train(was_training)
    n = len(order)
    res: dict[str, Any] = {k: v / n for k, v in sums.items()}
    names = [k for k in res if k != "model_loss"]
    best = min(names, key=res.__getitem__)
    res.update(trivial=res[best], trivial_name=best, samples=n)
    res["ratio"] = res["model_loss"] / res["trivial"] if res["trivial"] > 0 else float("nan")
    return res


def format_reconstruction(res: dict[str, Any], split: str = "train") -> str:
    """One line: the model's loss, the trivial baseline it must beat, and their ratio."""
    return (f"reconstruction loss {res['model_loss']:.4f} vs trivial baseline {res['trivial']:.4f} "
            f"({res['trivial_name']}): ratio {res['ratio']:.2f} on {res['samples']} {split} samples, "
            "fresh masks (a model that learned nothing scores about 1.00)")  # fmt: skip
