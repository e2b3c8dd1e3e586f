"""Frozen-encoder features: the pooled output of ``model.forward_features`` for a whole dataset."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


def model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _num_classes(*datasets: Dataset) -> int | None:
    """The first ``num_classes`` a dataset declares (None, 0 or missing: undeclared)."""
    for ds in datasets:
        n = getattr(ds, "num_classes", None)
        if n:
            return int(n)
    return None


@torch.no_grad()
def extract_features(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    autocast_dtype: torch.dtype | None = None,
    pool: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the frozen encoder over ``dataset`` (items ``(inputs, label)``) in order.

    Returns ``(features (N, D) float32 on CPU, labels (N,) int64)``. The model runs in eval
    mode without gradients on ``device`` (default: where its parameters are; the model is moved
    there) and is put back into the mode it was in. ``autocast_dtype`` (e.g. ``torch.bfloat16``)
    runs the forward under autocast on CUDA; features are returned in float32 either way.
    ``pool`` is handed to ``forward_features`` ("auto": the cls token when there is one, else
    the token mean; "cls"; "mean").
    """
    kwargs = {} if pool == "auto" else {"pool": pool}
    device = torch.device(device) if device is not None else model_device(model)
    model.to(device)
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")  # fmt: skip
    feats, labels = [], []
    try:
        for inputs, target in loader:
            inputs = inputs.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                f = model.forward_features(inputs, **kwargs)  # (B, D)
            feats.append(f.float().cpu())
            labels.append(torch.as_tensor(target, dtype=torch.long).reshape(-1))
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError("cannot extract features from an empty dataset")
    return torch.cat(feats), torch.cat(labels)
