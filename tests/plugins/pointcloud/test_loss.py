"""Chamfer-L2 against brute force, and its properties."""

import torch

from maeflow.testing import check_loss
from maeflow_pointcloud.loss import ChamferL2Loss, chamfer_l2


def brute_force(a: torch.Tensor, b: torch.Tensor) -> float:
    """Sets (M, n, 3), (M, m, 3): mean nearest squared distance each way, over all points."""
    to_b, to_a = [], []
    for g in range(a.shape[0]):
        for p in a[g]:
            to_b.append(min(float(((p - q) ** 2).sum()) for q in b[g]))
        for q in b[g]:
            to_a.append(min(float(((p - q) ** 2).sum()) for p in a[g]))
    return sum(to_b) / len(to_b) + sum(to_a) / len(to_a)


def test_matches_brute_force(seeded):
    a, b = torch.randn(3, 6, 3, generator=seeded), torch.randn(3, 5, 3, generator=seeded)
    assert abs(chamfer_l2(a, b).item() - brute_force(a, b)) < 1e-5


def test_zero_for_identical_sets_symmetric_and_order_blind(seeded):
    a, b = torch.randn(4, 16, 3, generator=seeded), torch.randn(4, 16, 3, generator=seeded)
    assert chamfer_l2(a, a).item() == 0.0
    assert torch.allclose(chamfer_l2(a, b), chamfer_l2(b, a))
    perm = torch.randperm(16, generator=seeded)
    assert torch.allclose(chamfer_l2(a[:, perm], b), chamfer_l2(a, b))
    assert torch.allclose(chamfer_l2(a, b[:, perm.flip(0)]), chamfer_l2(a, b))
    assert chamfer_l2(a, b) > 0


def test_masked_loss_reads_only_masked_groups(seeded):
    B, G, k = 2, 6, 4
    target = torch.randn(B, G, k * 3, generator=seeded)
    mask = torch.zeros(B, G, dtype=torch.bool)
    mask[:, :3] = True
    check_loss(ChamferL2Loss(), target, mask)  # the shared contract: scalar, blind to visible, 0 if perfect
    pred = torch.randn(B, G, k * 3, generator=seeded)
    expected = chamfer_l2(pred[mask].reshape(-1, k, 3), target[mask].reshape(-1, k, 3))
    assert torch.allclose(ChamferL2Loss()(pred, target, mask), expected)
    # points within a group may come in any order
    shuffled = pred.reshape(B, G, k, 3)[:, :, torch.randperm(k, generator=seeded)].reshape(B, G, k * 3)
    assert torch.allclose(ChamferL2Loss()(shuffled, target, mask), expected)
    assert ChamferL2Loss()(pred, target, torch.zeros(B, G, dtype=torch.bool)).item() == 0.0
