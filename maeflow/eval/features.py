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


class LabelSubset(torch.utils.data.Subset):
    """A :class:`~torch.utils.data.Subset` that keeps its parent's ``num_classes`` and answers
    ``targets`` for its own items (so nothing has to decode the data to count classes)."""

    def __init__(self, dataset: Dataset, indices: list[int], targets: list[int]):
        super().__init__(dataset, indices)
        self.num_classes = _num_classes(dataset) or (max(targets) + 1 if targets else 0)
        self._all_targets = targets

    @property
    def targets(self) -> list[int]:
        return [self._all_targets[i] for i in self.indices]


def label_subset(dataset: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """The labelled part of ``dataset`` a low-label protocol trains on: ``fraction`` of each
    class's items (rounded, at least one per class), drawn by a generator seeded with ``seed``,
    in the dataset's order. ``fraction`` 1 returns ``dataset`` itself.

    The labels come from the dataset's ``targets`` (every maeflow folder dataset has it); a
    dataset without one is read once for its labels."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"the label fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return dataset
    targets = getattr(dataset, "targets", None)
    if targets is None:
        targets = [int(dataset[i][1]) for i in range(len(dataset))]
    targets = [int(t) for t in targets]
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(t, []).append(i)
    g = torch.Generator().manual_seed(seed)
    chosen: list[int] = []
    for label in sorted(by_class):
        items = by_class[label]
        keep = max(1, round(fraction * len(items)))
        order = torch.randperm(len(items), generator=g)[:keep].tolist()
        chosen.extend(items[j] for j in order)
    return LabelSubset(dataset, sorted(chosen), targets)
