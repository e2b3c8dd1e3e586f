"""Linear probe on frozen features, after the MAE linear-probing recipe: features standardized
with the training set's statistics (what MAE's BatchNorm without affine parameters does), then
one linear layer trained with SGD (momentum 0.9, no weight decay) under a cosine schedule.

Features are precomputed once, so the probe itself costs a few matrix products per step: on a
CPU, 100 epochs over a few thousand samples take about a second.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

# below this many multiply-adds per step, CPU threads cost more in synchronization than they
# save (measured: 600 digits steps take 1 s on one thread, 20+ s on two busy cores)
_SINGLE_THREAD_MACS = 1 << 22
MOMENTUM = 0.9


@contextlib.contextmanager
def _cpu_threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def standardize(train: torch.Tensor, *others: torch.Tensor, eps: float = 1e-6) -> list[torch.Tensor]:
    """Subtract the training features' mean and divide by their std (per dimension); the same
    statistics are applied to ``others``."""
    mean = train.mean(dim=0, keepdim=True)
    std = (train.var(dim=0, unbiased=False, keepdim=True) + eps).sqrt()
    return [(x - mean) / std for x in (train, *others)]


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    epochs: int = 100,
    lr: float = 0.1,
    batch_size: int = 256,
    weight_decay: float = 0.0,
    warmup_epochs: int = 5,
    num_classes: int | None = None,
    seed: int = 0,
    return_weights: bool = False,
) -> dict[str, float]:
    """Train a linear classifier on standardized frozen features; return ``{"top1": test
    accuracy %, "train_top1": training accuracy %}`` (with ``return_weights`` also ``"weight"``
    (D, C), ``"bias"`` (C,), and the standardization's ``"mean"`` / ``"var"`` (D,): what a
    ``BatchNorm1d`` without affine parameters in front of the head holds).

    Shapes: features (N, D) / (M, D), labels (N,) / (M,) in ``0..num_classes-1``. The weights
    start at zero and the batch order comes from a generator seeded with ``seed``, so the result
    is the same on every run. ``lr`` ramps up linearly over ``warmup_epochs`` and then follows a
    half cosine to zero.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    if train_features.shape[0] != train_labels.shape[0] or test_features.shape[0] != test_labels.shape[0]:
        raise ValueError("features and labels differ in length")
    if train_labels.numel() == 0 or test_labels.numel() == 0:
        raise ValueError("the linear probe needs training and test samples")
    if (train_labels < 0).any() or (test_labels < 0).any():
        raise ValueError("the linear probe needs labeled data (found labels < 0)")
    num_classes = num_classes or int(max(train_labels.max(), test_labels.max())) + 1
    device = train_features.device
    x_train, x_test = standardize(train_features.float(), test_features.float().to(device))
    y_train, y_test = train_labels.to(device), test_labels.to(device)

    # plain tensors and a hand-written SGD step (PyTorch's update rule: momentum 0.9, no
    # dampening): torch.optim would import torch._dynamo, seconds of start-up for a tiny problem
    weight = torch.zeros(x_train.shape[1], num_classes, device=device, requires_grad=True)  # (D, C)
    bias = torch.zeros(num_classes, device=device, requires_grad=True)
    params = (weight, bias)
    buffers = [torch.zeros_like(p) for p in params]
    gen = torch.Generator().manual_seed(seed)
    n = x_train.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    total, warmup = epochs * steps_per_epoch, warmup_epochs * steps_per_epoch
    step = 0
    small = device.type == "cpu" and batch_size * x_train.shape[1] * num_classes < _SINGLE_THREAD_MACS
    with torch.enable_grad(), _cpu_threads(1 if small else None):
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen).to(device)
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                if step < warmup:
                    cur = lr * (step + 1) / warmup
                else:
                    cur = lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
                loss = F.cross_entropy(x_train[idx] @ weight + bias, y_train[idx])
                grads = torch.autograd.grad(loss, params)
                with torch.no_grad():
                    for p, g, buf in zip(params, grads, buffers, strict=True):
                        if weight_decay and p is weight:
                            g = g + weight_decay * p
                        buf.mul_(MOMENTUM).add_(g)
                        p.sub_(cur * buf)
                step += 1
    with torch.no_grad():
        train_acc = ((x_train @ weight + bias).argmax(1) == y_train).float().mean().item()
        test_acc = ((x_test @ weight + bias).argmax(1) == y_test).float().mean().item()
    out = {"top1": 100.0 * test_acc, "train_top1": 100.0 * train_acc}
    if return_weights:
        feats = train_features.float()
        out.update(weight=weight.detach(), bias=bias.detach(), mean=feats.mean(dim=0),
                   var=feats.var(dim=0, unbiased=False))  # fmt: skip
    return out
