"""Fixed train/test splits for datasets that ship as one labeled array."""

from __future__ import annotations

import numpy as np


def stratified_split(labels: np.ndarray, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """From each class, ``round(n_class · test_fraction)`` random indices (numpy
    ``default_rng(seed)``) go to test. Returns sorted ``(train_indices, test_indices)``;
    the same labels, fraction and seed always give the same split."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
