"""The datasets of a downstream run: its two splits, its class count, and each process's padded
share of the held-out split."""

from __future__ import annotations

from torch import nn
from torch.utils.data import Dataset

from maeflow.downstream.config import DownstreamConfig


def build_splits(cfg: DownstreamConfig, backbone: nn.Module | None) -> tuple[Dataset, Dataset]:
    """The train split (``options`` + ``train_options``, the dataset's own augmentation default)
    and the held-out split (``options`` + ``test_options``, ``augment=False`` where the builder has it)."""
    from maeflow.data import build_dataset, builder_options
    from maeflow.plugins import registry

    d = cfg.data
    valid = builder_options(registry("dataset").get(d.name))
    test_opts = {**d.options, **d.test_options}
    if (valid is None or "augment" in valid) and "augment" not in test_opts:
        test_opts["augment"] = False
    train = build_dataset(d.name, split=d.train_split, model=backbone, **{**d.options, **d.train_options})
    return train, build_dataset(d.name, split=d.test_split, model=backbone, **test_opts)


def count_classes(cfg: DownstreamConfig, train: Dataset, test: Dataset) -> int:
    from torch.utils.data import DataLoader

    from maeflow.eval.features import _num_classes
    from maeflow.eval.finetune import _scan_num_classes

    n = cfg.data.num_classes or _num_classes(train, test)
    return n or _scan_num_classes([DataLoader(ds, batch_size=256) for ds in (train, test)])


class PaddedShard(Dataset):
    """Rank ``r``'s share of the held-out split, padded to the same length on every rank (FSDP
    needs the same number of forwards everywhere); padded items carry ``valid = 0``."""

    def __init__(self, dataset: Dataset, rank: int, world: int):
        self.dataset, self.idx = dataset, list(range(rank, len(dataset), world))
        self.n = -(-len(dataset) // world)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        real = i < len(self.idx)
        x, y = self.dataset[self.idx[i] if real else 0][:2]
        return x, y, int(real)
