"""Farthest-point sampling, kNN grouping and normalization against plain reference loops."""

import pytest
import torch

from maeflow_pointcloud.grouping import (
    farthest_point_sample,
    gather_points,
    group_points,
    knn,
    normalize_unit_sphere,
)


def fps_reference(xyz: torch.Tensor, m: int, start: int = 0) -> list[int]:
    """One cloud (N, 3): the textbook loop, distances to the chosen set recomputed each step."""
    chosen = [start]
    for _ in range(m - 1):
        best, best_d = None, -1.0
        for i in range(xyz.shape[0]):
            d = min(float(((xyz[i] - xyz[j]) ** 2).sum()) for j in chosen)
            if d > best_d:
                best, best_d = i, d
        chosen.append(best)
    return chosen


def test_fps_matches_reference_loop_and_is_distinct(seeded):
    xyz = torch.rand(3, 60, 3, generator=seeded)
    idx = farthest_point_sample(xyz, 12)
    assert idx.shape == (3, 12)
    for b in range(3):
        assert idx[b].unique().numel() == 12
        assert idx[b].tolist() == fps_reference(xyz[b], 12)


def test_fps_random_start_is_seeded_and_still_matches(seeded):
    xyz = torch.rand(2, 40, 3, generator=seeded)
    a = farthest_point_sample(xyz, 8, start="random", generator=torch.Generator().manual_seed(5))
    b = farthest_point_sample(xyz, 8, start="random", generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    for i in range(2):
        assert a[i].tolist() == fps_reference(xyz[i], 8, start=int(a[i, 0]))
    with pytest.raises(ValueError, match="start"):
        farthest_point_sample(xyz, 8, start="middle")


def test_knn_matches_brute_force(seeded):
    pts = torch.rand(2, 50, 3, generator=seeded)
    query = torch.rand(2, 7, 3, generator=seeded)
    idx = knn(query, pts, 5)
    for b in range(2):
        for g in range(7):
            d = ((pts[b] - query[b, g]) ** 2).sum(-1)
            assert idx[b, g].tolist() == d.argsort()[:5].tolist()


def test_groups_are_relative_to_their_centers(seeded):
    pts = torch.rand(2, 64, 3, generator=seeded)
    groups, centers = group_points(pts, 8, 6)
    assert groups.shape == (2, 8, 6, 3) and centers.shape == (2, 8, 3)
    # each center is a point of the cloud, so it is its own nearest neighbour: offset 0 first
    assert torch.allclose(groups[:, :, 0], torch.zeros(2, 8, 3))
    idx = knn(centers, pts, 6)
    assert torch.allclose(groups + centers.unsqueeze(2), gather_points(pts, idx))


def test_extra_point_features_travel_with_their_points(seeded):
    pts = torch.rand(1, 32, 5, generator=seeded)
    groups, centers = group_points(pts, 4, 3)
    assert groups.shape == (1, 4, 3, 5)
    idx = knn(centers, pts[..., :3], 3)
    assert torch.equal(groups[..., 3:], gather_points(pts[..., 3:], idx))


def test_unit_sphere_normalization(seeded):
    pts = torch.rand(3, 100, 3, generator=seeded) * 7 + 3
    out = normalize_unit_sphere(pts)
    assert torch.allclose(out.mean(1), torch.zeros(3, 3), atol=1e-5)
    assert torch.allclose(out.norm(dim=-1).amax(1), torch.ones(3))


def test_too_few_points_and_non_finite_input_are_rejected():
    with pytest.raises(ValueError, match="at least 8"):
        group_points(torch.rand(1, 5, 3), 8, 4)
    bad = torch.rand(1, 40, 3)
    bad[0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        group_points(bad, 8, 4)
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        group_points(torch.rand(40, 3), 8, 4)
