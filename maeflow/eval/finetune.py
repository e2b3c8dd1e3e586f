"""End-to-end fine-tuning: the encoder and a new linear head trained together on labels (the
protocol MAE, VideoMAE and Audio-MAE report first), for any modality.

    from maeflow.eval import finetune_encoder
    result = finetune_encoder(model, train_ds, test_ds, epochs=10)   # {"finetune_top1": ..., ...}

The recipe follows MAE's fine-tuning: ``head(model.forward_features(x))`` with a new linear
head (PyTorch's default init; MAE's near-zero start is ``head_init_std=2e-5``), AdamW (betas
0.9/0.999) with weight decay on weight matrices only, a per-step linear warm-up then
half-cosine learning rate, label smoothing, optional layer-wise lr decay. Mixup,
cutmix and RandAugment are image-specific: they belong to the training dataset the caller
passes. The caller's model is never changed: a deep copy is trained.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import numbers
import time
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from maeflow.eval.features import _num_classes, model_device
from maeflow.runtime import Precision, WarmupCosine, build_optimizer, resolve_device

log = logging.getLogger(__name__)

BETAS = (0.9, 0.999)  # MAE's fine-tuning AdamW (pretraining uses 0.95)
MAE_HEAD_INIT_STD = 2e-5  # MAE: trunc_normal_(head.weight, std=2e-5), for its 100-epoch schedule


class _Classifier(nn.Module):
    """``head(backbone.forward_features(x))``; weight-decay exemptions are the backbone's own
    (biases, norms, tokens, positional tables) plus the head's bias."""

    def __init__(self, backbone: nn.Module, head: nn.Linear, pool: str):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.kwargs = {} if pool == "auto" else {"pool": pool}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.forward_features(x, **self.kwargs))  # (B, C)

    def no_weight_decay_names(self) -> set[str]:
        from maeflow.runtime.optim import no_weight_decay_names

        names = {f"backbone.{n}" for n in no_weight_decay_names(self.backbone)}
        return names | {f"head.{n}" for n, p in self.head.named_parameters() if p.ndim <= 1}

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Layers for layer-wise lr decay (timm's convention): the backbone's tokenizer, tokens
        and positional tables 0, encoder block i → i + 1, the final norm and the head last."""
        from maeflow.runtime.optim import mae_group_matcher

        if not hasattr(getattr(self.backbone, "encoder", None), "blocks"):
            raise ValueError("layer_decay needs a model with encoder.blocks (a maeflow MaskedAutoencoder)")
        return mae_group_matcher("backbone.")


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run under ``torch.manual_seed(seed)`` and give the global RNG states back afterwards."""
    devices = list(range(torch.cuda.device_count())) if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _decompile(module: nn.Module) -> None:
    """Drop ``nn.Module.compile()`` state from a deep copy: the compiled call is bound to the
    original module and would run the original's weights."""
    for m in module.modules():
        if getattr(m, "_compiled_call_impl", None) is not None:
            m._compiled_call_impl = None


def _labels(target: Any) -> torch.Tensor:
    return torch.as_tensor(target, dtype=torch.long).reshape(-1)


def _check_labels(y: torch.Tensor, num_classes: int) -> None:
    if (y < 0).any():
        raise ValueError("fine-tuning needs a labeled dataset, but some items have label -1 (unlabeled)")
    if (y >= num_classes).any():
        raise ValueError(f"labels exceed the dataset's num_classes ({num_classes})")


def _scan_num_classes(loaders: list[DataLoader]) -> int:
    """max label + 1 over whole datasets (only when none declares ``num_classes``)."""
    top = -1
    for loader in loaders:
        for _, target in loader:
            y = _labels(target)
            if (y < 0).any():
                raise ValueError("fine-tuning needs a labeled dataset, but some items have label -1 (unlabeled)")
            top = max(top, int(y.max()))
    return top + 1


def _used_parameters(net: nn.Module, inputs: torch.Tensor, kwargs: dict[str, Any]) -> tuple[set[str], int]:
    """Names of the trainable parameters that ``forward_features`` reaches (the decoder and
    mask token do not), and the feature width D: one forward/backward in eval mode."""
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    was_training = net.training
    net.eval()
    try:
        with torch.enable_grad():
            feats = net.forward_features(inputs, **kwargs)  # (B, D)
            grads = torch.autograd.grad(feats.float().sum(), [p for _, p in named], allow_unused=True)
    finally:
        net.train(was_training)
    return {n for (n, _), g in zip(named, grads, strict=True) if g is not None}, int(feats.shape[-1])


def finetune_encoder(
    model: nn.Module,
    train_dataset: Dataset,
    test_dataset: Dataset,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    warmup_epochs: int = 1,
    label_smoothing: float = 0.1,
    seed: int = 0,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    precision: str = "fp32",
    pool: str = "auto",
    progress: bool = True,
    layer_decay: float | None = None,
    head_init_std: float | None = None,
    return_model: bool = False,
) -> dict[str, Any]:
    """Fine-tune a copy of ``model``'s tokenizer + encoder with a new linear head on
    ``train_dataset`` and report top-1 (percent) on ``test_dataset``.

    Datasets hold ``(inputs, label)`` items with labels >= 0; ``train_dataset`` may augment
    (the caller's choice), ``test_dataset`` should not. The classes are the datasets'
    ``num_classes``, else max label + 1 (read from one pass over both datasets).

    The head is ``nn.Linear(D, num_classes)`` on ``forward_features(x, pool)``: PyTorch's default
    initialization, or weights truncated normal ``head_init_std`` and bias 0 when given (MAE
    uses 2e-5, ``MAE_HEAD_INIT_STD``, over 50–100 epochs; in a short fine-tune a near-zero head
    passes near-zero gradients to the encoder, which Adam then amplifies into noise: measured on
    moving digits, 2,000 clips, 6 epochs: 26 % top-1 with 2e-5 against 79 % with the default).
    Only parameters that reach the features are optimized (one forward/backward finds them: the
    decoder and mask token are left out), with AdamW at peak ``lr`` (per-step linear warm-up
    over ``warmup_epochs``, then half-cosine to 0), ``weight_decay`` on weight matrices only
    (:func:`maeflow.runtime.build_optimizer`, the factory pretraining uses), and ``layer_decay``
    (e.g. 0.75) scaling block i's lr by ``layer_decay ** (depth + 1 - (i + 1))``.
    Training runs in train mode (stochastic depth active), the test pass in eval mode without
    gradients, at ``precision`` (:class:`maeflow.runtime.Precision`: ``fp32``, ``bf16``, ``fp16``
    with a grad scaler, or ``auto``) on ``device`` (default: the model's).

    Deterministic given ``seed``: batches are shuffled by a seeded generator; head init,
    stochastic depth and in-process augmentation draw from ``torch.manual_seed(seed)`` inside
    ``torch.random.fork_rng``, so the global RNG state is left as it was. The caller's model
    (weights, device, train/eval mode) is untouched: a ``copy.deepcopy`` is trained.

    Returns ``{"finetune_top1", "finetune_train_top1" (running, last epoch),
    "finetune_train_loss" (mean over the last epoch), "epochs", "steps", "num_train",
    "num_test", "num_classes", "feature_dim", "seconds"}``; with ``return_model`` also
    ``"model"`` (the fine-tuned copy, eval mode) and ``"head"``.
    """
    start = time.perf_counter()
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if warmup_epochs < 0 or weight_decay < 0:
        raise ValueError("warmup_epochs and weight_decay must be >= 0")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if layer_decay is not None and not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
    if head_init_std is not None and not head_init_std > 0:
        raise ValueError(f"head_init_std must be positive, got {head_init_std}")
    if pool not in ("auto", "cls", "mean"):
        raise ValueError(f"pool must be 'auto', 'cls' or 'mean', got {pool!r}")
    num_train, num_test = len(train_dataset), len(test_dataset)
    if num_train == 0 or num_test == 0:
        raise ValueError(f"fine-tuning needs training and test samples, got {num_train} and {num_test}")

    device = resolve_device(device) if device is not None else model_device(model)
    prec = Precision(precision, device)
    kwargs = {} if pool == "auto" else {"pool": pool}
    pin = device.type == "cuda"
    net = copy.deepcopy(model)
    _decompile(net)
    net.to(device)

    with _seeded(seed, device):
        num_classes = _num_classes(train_dataset, test_dataset)
        if num_classes is None:
            num_classes = _scan_num_classes([DataLoader(ds, batch_size=batch_size, num_workers=num_workers)
                                             for ds in (train_dataset, test_dataset)])  # fmt: skip
            if num_classes < 2:
                raise ValueError(f"fine-tuning needs at least two classes, the labels give {num_classes}")

        probe_inputs = next(iter(DataLoader(test_dataset, batch_size=min(2, num_test))))[0].to(device)
        used, dim = _used_parameters(net, probe_inputs, kwargs)
        unused = [p for n, p in net.named_parameters() if p.requires_grad and n not in used]
        for p in unused:
            p.requires_grad_(False)  # decoder, mask token: never updated, never decayed

        head = nn.Linear(dim, num_classes)
        if head_init_std is not None:
            nn.init.trunc_normal_(head.weight, std=head_init_std)
            nn.init.zeros_(head.bias)
        classifier = _Classifier(net, head.to(device), pool)

        optimizer = build_optimizer(classifier, lr, weight_decay, betas=BETAS, fused="auto", layer_decay=layer_decay)
        gen = torch.Generator().manual_seed(seed)
        loader = DataLoader(train_dataset, batch_size=batch_size, shuffle=True, generator=gen,
                            num_workers=num_workers, pin_memory=pin)  # fmt: skip
        steps_per_epoch = len(loader)
        total = epochs * steps_per_epoch
        scheduler = WarmupCosine(optimizer, lr, total, min(total, round(warmup_epochs * steps_per_epoch)))
        test_loader = DataLoader(test_dataset, batch_size=batch_size, num_workers=num_workers, pin_memory=pin)
        scaler = prec.scaler

        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="fine-tune", unit="step", dynamic_ncols=True, leave=False,
                   disable=None if progress else True)  # fmt: skip
        classifier.train()
        try:
            for epoch in range(epochs):
                loss_sum = torch.zeros((), device=device)
                correct = torch.zeros((), dtype=torch.long, device=device)
                seen = 0
                for inputs, target in loader:
                    y = _labels(target)
                    _check_labels(y, num_classes)
                    inputs, y = inputs.to(device, non_blocking=True), y.to(device, non_blocking=True)
                    scheduler.apply()
                    with prec.autocast():
                        logits = classifier(inputs)  # (B, C)
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    scheduler.step()
                    loss_sum += loss.detach() * len(y)
                    correct += (logits.detach().argmax(1) == y).sum()
                    seen += len(y)
                    bar.update()
                train_loss = loss_sum.item() / seen
                if not math.isfinite(train_loss):
                    raise FloatingPointError(f"fine-tuning loss is not finite in epoch {epoch + 1}; lower the lr")
                bar.set_postfix(epoch=epoch + 1, loss=f"{train_loss:.4f}")
                if progress and bar.disable:  # no terminal for the bar: one line per epoch instead
                    log.info("fine-tune epoch %d/%d: loss %.4f", epoch + 1, epochs, train_loss)
        finally:
            bar.close()
        train_top1 = 100.0 * correct.item() / seen

        classifier.eval()
        hits = 0
        with torch.no_grad():
            for inputs, target in test_loader:
                y = _labels(target)
                _check_labels(y, num_classes)
                with prec.autocast():
                    logits = classifier(inputs.to(device, non_blocking=True))
                hits += int((logits.argmax(1).cpu() == y).sum())
    result: dict[str, Any] = {
        "finetune_top1": 100.0 * hits / num_test,
        "finetune_train_top1": train_top1,
        "finetune_train_loss": train_loss,
        "epochs": epochs,
        "steps": total,
        "num_train": num_train,
        "num_test": num_test,
        "num_classes": num_classes,
        "feature_dim": dim,
        "seconds": time.perf_counter() - start,
    }
    log.info("fine-tuned %d epochs (%d steps, lr %.3g) in %.1f s: test top-1 %.2f%%, last-epoch loss %.4f",
             epochs, total, lr, result["seconds"], result["finetune_top1"], train_loss)  # fmt: skip
    if return_model:
        for p in unused:
            p.requires_grad_(True)
        result.update(model=net, head=head)
    return result
