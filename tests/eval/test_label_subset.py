"""The low-label fine-tuning split (``eval.finetune_label_fraction``, maeflow.eval.features.label_subset)."""

import pytest
import torch
from torch.utils.data import Dataset

from maeflow.eval.features import label_subset


class _Labelled(Dataset):
    """Items ``(index, label)``; counts how often an item is read."""

    def __init__(self, labels, num_classes=None, with_targets=True):
        self.labels = list(labels)
        self.reads = 0
        if num_classes is not None:
            self.num_classes = num_classes
        if with_targets:
            self.targets = list(self.labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        self.reads += 1
        return torch.tensor([float(i)]), self.labels[i]


LABELS = [0] * 40 + [1] * 20 + [2] * 3


def test_each_class_keeps_its_fraction_and_at_least_one_item():
    ds = _Labelled(LABELS, num_classes=3)
    sub = label_subset(ds, 0.1, seed=0)
    kept = [LABELS[i] for i in sub.indices]
    assert [kept.count(c) for c in range(3)] == [4, 2, 1]  # round(0.1 * n), never 0
    assert sub.targets == kept and sub.num_classes == 3
    assert sorted(sub.indices) == list(sub.indices)  # the dataset's order
    assert ds.reads == 0  # the labels came from `targets`, nothing was decoded


def test_the_subset_is_a_function_of_the_seed():
    ds = _Labelled(LABELS)
    assert label_subset(ds, 0.25, seed=3).indices == label_subset(ds, 0.25, seed=3).indices
    assert label_subset(ds, 0.25, seed=3).indices != label_subset(ds, 0.25, seed=4).indices


def test_a_dataset_without_targets_is_read_once_for_labels_and_keeps_its_class_count():
    ds = _Labelled(LABELS, with_targets=False)
    sub = label_subset(ds, 0.5, seed=0)
    assert ds.reads == len(LABELS)
    assert sub.num_classes == 3 and len(sub) == 20 + 10 + 2


def test_fraction_one_is_the_dataset_itself_and_out_of_range_is_refused():
    ds = _Labelled(LABELS)
    assert label_subset(ds, 1.0) is ds
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="label fraction"):
            label_subset(ds, bad)


def test_the_evaluator_fine_tunes_on_the_fraction_and_the_probes_on_everything():
    from maeflow.config import EvalConfig
    from maeflow.eval.probe import ProbeEvaluator

    settings = EvalConfig(final=True, finetune_epochs=1, finetune_label_fraction=0.2)
    ev = ProbeEvaluator.for_dataset("digits", {"test_fraction": 0.2}, settings, seed=0)
    train, _ = ev.datasets()
    tuned = ev.finetune_train_dataset()
    assert len(train) > len(tuned) > 0
    assert abs(len(tuned) - 0.2 * len(train)) <= 10  # 10 classes, each rounded
    assert set(tuned.targets) == set(train.targets)
