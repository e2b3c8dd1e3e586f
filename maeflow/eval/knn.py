"""Weighted k-nearest-neighbour classification on frozen features (the InstDisc / DINO recipe):
cosine similarity, the ``k`` most similar training samples each vote for their class with weight
``exp(similarity / temperature)``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

_MAX_SIM_ENTRIES = 1 << 28


def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Predicted class (N_test,) for each test feature.

    ``train_features`` (N, D), ``train_labels`` (N,) in ``0..num_classes-1``, ``test_features``
    (M, D). ``k`` is capped at N. Test samples go through in chunks of ``chunk_size`` so that the
    (chunk, N) similarity matrix stays small (default: at most 1024 rows and 2^28 entries, 1 GiB,
    e.g. 209 rows against ImageNet's 1.28M training images).
    """
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if train_features.shape[0] != train_labels.shape[0]:
        raise ValueError(f"{train_features.shape[0]} training features but {train_labels.shape[0]} labels")
    if train_labels.numel() == 0:
        raise ValueError("kNN needs at least one training sample")
    if (train_labels < 0).any():
        raise ValueError("kNN needs labeled training data (found labels < 0)")
    num_classes = num_classes or int(train_labels.max()) + 1
    k = min(k, train_features.shape[0])
    chunk_size = chunk_size or max(1, min(1024, _MAX_SIM_ENTRIES // train_features.shape[0]))
    train = F.normalize(train_features.float(), dim=1)  # (N, D)
    labels = train_labels.to(train.device)
    preds = []
    for start in range(0, test_features.shape[0], chunk_size):
        test = F.normalize(test_features[start : start + chunk_size].float().to(train.device), dim=1)  # (m, D)
        sim, idx = (test @ train.T).topk(k, dim=1)  # (m, k)
        weights = (sim / temperature).exp()
        votes = torch.zeros(test.shape[0], num_classes, device=train.device)
        votes.scatter_add_(1, labels[idx], weights)  # (m, C)
        preds.append(votes.argmax(dim=1))
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def knn_top1(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
) -> float:
    """Top-1 accuracy of :func:`knn_predict` in percent."""
    if test_labels.numel() == 0:
        raise ValueError("kNN evaluation needs at least one test sample")
    if num_classes is None:
        num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    pred = knn_predict(train_features, train_labels, test_features, k, temperature, num_classes)
    return 100.0 * (pred.cpu() == test_labels.cpu()).float().mean().item()
