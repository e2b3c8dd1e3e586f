"""Labeled primitive shapes as triangle meshes, and a generated dataset of point clouds from them.

Each sample: a primitive's mesh, sampled uniformly on its surface, anisotropically scaled,
randomly rotated, jittered, and normalized onto the unit sphere. Everything is drawn from a
generator seeded by ``(seed, split, index)``, so a sample is the same on every machine and
in every worker, and the train and test splits never share a draw.
"""

from __future__ import annotations

import math
from functools import cache

import torch
from torch.utils.data import Dataset

from maeflow_pointcloud.grouping import normalize_unit_sphere
from maeflow_pointcloud.readers import sample_surface

Mesh = tuple[torch.Tensor, torch.Tensor]  # vertices (V, 3) float64, faces (F, 3) long


def revolve(profile: list[tuple[float, float]], segments: int = 32, closed: bool = False) -> Mesh:
    """Surface of revolution about the y axis of a profile polyline of ``(radius, y)`` points;
    ``closed`` joins the last profile point back to the first (a torus)."""
    P = len(profile)
    angles = torch.arange(segments, dtype=torch.float64) * (2 * math.pi / segments)
    r = torch.tensor([p[0] for p in profile], dtype=torch.float64)
    y = torch.tensor([p[1] for p in profile], dtype=torch.float64)
    verts = torch.stack(
        [r[:, None] * angles.cos()[None], y[:, None].expand(P, segments), r[:, None] * angles.sin()[None]], dim=-1
    ).reshape(-1, 3)  # (P · segments, 3), profile-major
    faces = []
    for i in range(P if closed else P - 1):
        i2 = (i + 1) % P
        for j in range(segments):
            j2 = (j + 1) % segments
            a, b, c, d = i * segments + j, i * segments + j2, i2 * segments + j, i2 * segments + j2
            faces += [[a, b, d], [a, d, c]]
    return verts, torch.tensor(faces, dtype=torch.long)


def _arc(cx: float, cy: float, radius: float, start: float, stop: float, steps: int) -> list[tuple[float, float]]:
    ts = [start + (stop - start) * i / steps for i in range(steps + 1)]
    return [(max(cx + radius * math.cos(t), 0.0), cy + radius * math.sin(t)) for t in ts]


def polyhedron(vertices: list[list[float]], faces: list[list[int]]) -> Mesh:
    """A mesh from explicit vertices and polygons (fan-triangulated)."""
    tris = [[f[0], f[i], f[i + 1]] for f in faces for i in range(1, len(f) - 1)]
    return torch.tensor(vertices, dtype=torch.float64), torch.tensor(tris, dtype=torch.long)


def _cube() -> Mesh:
    v = [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]  # index = 4x + 2y + z (0/1)
    f = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    return polyhedron(v, f)


def _pyramid() -> Mesh:
    v = [[-1, -1, -1], [1, -1, -1], [1, -1, 1], [-1, -1, 1], [0, 1, 0]]
    return polyhedron(v, [[0, 1, 2, 3], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])


def _octahedron() -> Mesh:
    v = [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]
    f = [[a, b, c] for a in (0, 1) for b in (2, 3) for c in (4, 5)]
    return polyhedron(v, f)


# name → mesh builder; the class index is the position in this table
PRIMITIVES = {
    "sphere": lambda: revolve(_arc(0, 0, 1, -math.pi / 2, math.pi / 2, 16)),
    "cube": _cube,
    "cylinder": lambda: revolve([(0, -1), (1, -1), (1, 1), (0, 1)]),
    "cone": lambda: revolve([(0, -1), (1, -1), (0, 1)]),
    "torus": lambda: revolve(_arc(1, 0, 0.35, 0, 2 * math.pi, 16)[:-1], closed=True),
    "pyramid": _pyramid,
    "octahedron": _octahedron,
    # bottom hemisphere, then (implicitly) the straight side, then the top hemisphere
    "capsule": lambda: revolve(_arc(0, -0.6, 0.5, -math.pi / 2, 0, 8) + _arc(0, 0.6, 0.5, 0, math.pi / 2, 8)),
}


@cache
def primitive_mesh(name: str) -> Mesh:
    if name not in PRIMITIVES:
        raise ValueError(f"unknown primitive {name!r}; known: {', '.join(PRIMITIVES)}")
    return PRIMITIVES[name]()


def random_rotation(generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniformly random rotation matrix (3, 3) (QR of a Gaussian matrix, signs fixed)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def make_shape(
    name: str,
    num_points: int,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.6, 1.4),
    jitter: float = 0.01,
) -> torch.Tensor:
    """One sample (num_points, 3) of primitive ``name`` on the unit sphere: surface points,
    per-axis scale from U[scale], a random rotation, Gaussian jitter (σ = ``jitter``, clipped
    at 5σ)."""
    verts, faces = primitive_mesh(name)
    pts = sample_surface(verts, faces, num_points, generator).double()  # (N, 3)
    s = torch.empty(3, dtype=torch.float64).uniform_(*scale, generator=generator)
    pts = (pts * s) @ random_rotation(generator).T
    if jitter > 0:
        noise = torch.randn(pts.shape, generator=generator, dtype=torch.float64) * jitter
        pts = pts + noise.clamp(-5 * jitter, 5 * jitter)
    return normalize_unit_sphere(pts).float()


class SyntheticShapes(Dataset):
    """``size`` generated clouds ``(num_points, 3)`` with labels (index into ``classes``),
    balanced over the classes. Deterministic by ``(seed, split, index)``; ``transform``
    (e.g. training augmentation) is applied on top and may use torch's global generator."""

    def __init__(
        self,
        split: str = "train",
        num_points: int = 1024,
        size: int = 1024,
        seed: int = 0,
        classes: tuple[str, ...] | list[str] | None = None,
        jitter: float = 0.01,
        transform=None,
    ):
        self.classes = list(classes) if classes else list(PRIMITIVES)
        for name in self.classes:
            primitive_mesh(name)  # unknown names fail now, listing the known ones
        if size <= 0 or num_points <= 0:
            raise ValueError(f"size and num_points must be positive, got {size}, {num_points}")
        self.split = split
        self.num_points = int(num_points)
        self.size = int(size)
        self.seed = int(seed)
        self.jitter = float(jitter)
        self.transform = transform
        self.num_classes = len(self.classes)
        self.skipped: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return self.size

    def generator(self, index: int) -> torch.Generator:
        stream = 2 * self.seed + (self.split == "test")  # train and test never share a stream
        return torch.Generator().manual_seed(stream * 1_000_003 + index)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < self.size:
            raise IndexError(index)
        label = index % self.num_classes
        pts = make_shape(self.classes[label], self.num_points, self.generator(index), jitter=self.jitter)
        return (self.transform(pts) if self.transform else pts), label
