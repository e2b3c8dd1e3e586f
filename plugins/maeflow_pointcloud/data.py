"""Point-cloud datasets: a folder of point/mesh files, and generated primitive shapes.

Items are ``(points (num_points, 3) float32, label)``. Clouds are resampled to exactly
``num_points`` points: a larger cloud gives a random subset (no repeats), a smaller one all its
points plus random repeats (so sparse scans still fit the model; documented, not an error);
meshes are sampled on their surface. Then each cloud is centered and scaled onto the unit
sphere. Training augmentation (``augment``, default on for ``split="train"``) is Point-MAE's
per-axis scale U[2/3, 3/2] and translation U[−0.2, 0.2], drawn from torch's global generator.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import BinaryIO

import torch

from maeflow.data import FolderDataset, FolderIndex, check_root, check_split, scan_folder, split_folder
from maeflow.data.records import SampleCodec
from maeflow_pointcloud.grouping import normalize_unit_sphere
from maeflow_pointcloud.readers import EXTENSIONS, read_points
from maeflow_pointcloud.shapes import SyntheticShapes


def resample(points: torch.Tensor, num_points: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(M, 3) → (num_points, 3): a random subset when M ≥ num_points, else every point once
    plus ``num_points − M`` random repeats (in random order)."""
    M = points.shape[0]
    if M == 0:
        raise ValueError("cannot resample an empty point cloud")
    if M >= num_points:
        idx = torch.randperm(M, generator=generator)[:num_points]
    else:
        extra = torch.randint(M, (num_points - M,), generator=generator)
        idx = torch.cat([torch.arange(M), extra])[torch.randperm(num_points, generator=generator)]
    return points[idx]


class ScaleAndTranslate:
    """Point-MAE's training augmentation: ``x · s + t`` with per-axis ``s ~ U[lo, hi]`` and
    ``t ~ U[−shift, shift]``, on a (N, 3) cloud."""

    def __init__(self, scale: tuple[float, float] = (2 / 3, 3 / 2), shift: float = 0.2):
        self.scale = scale
        self.shift = shift

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        s = torch.empty(3).uniform_(*self.scale)
        t = torch.empty(3).uniform_(-self.shift, self.shift)
        return points * s + t


class _PointLoader:
    """``load(path) -> (num_points, 3)`` for :class:`maeflow.data.FolderDataset`: read,
    resample, normalize. With ``deterministic`` the random draws are seeded by the file name,
    so evaluation sees the same points every epoch; otherwise they come from torch's global
    generator (a fresh subset each epoch while training). A picklable object, for workers."""

    def __init__(self, num_points: int, mesh_points: int, normalize: bool, deterministic: bool, seed: int):
        self.num_points = num_points
        self.mesh_points = mesh_points
        self.normalize = normalize
        self.deterministic = deterministic
        self.seed = seed

    def __call__(self, path: Path | BinaryIO) -> torch.Tensor:  # a file, or a named shard member
        g = None
        if self.deterministic:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(str(path.name).encode()))
        n = max(self.mesh_points, self.num_points)
        pts = resample(read_points(path, num_mesh_points=n, generator=g), self.num_points, g)
        return normalize_unit_sphere(pts) if self.normalize else pts


def pointcloud_folder(
    split: str = "train",
    root: str | None = None,
    num_points: int = 1024,
    augment: bool | None = None,
    strict: bool = False,
    normalize: bool = True,
    labels: bool | None = None,
    extensions: tuple[str, ...] | list[str] = EXTENSIONS,
    mesh_points: int = 8192,
    deterministic: bool | None = None,
    seed: int = 0,
    split_file: str | None = None,
) -> FolderDataset:
    """Point clouds (npy/txt/xyz/ply points, off/obj meshes) as (``num_points``, 3) tensors.
    Unreadable or non-finite files are skipped and listed in ``dataset.skipped``. Training items
    (``augment``) get Point-MAE's random per-axis scale and shift. ShapeNet-55 as Point-MAE
    distributes it: ``root=.../shapenet_pc``, ``split_file=.../ShapeNet-55/{split}.txt``.

    :param root: the folder; the split reads ``root/<split>`` (``root/val`` also serves "test")
        when it exists, else ``root`` itself.
    :param num_points: points per cloud, resampled (a random subset, or every point plus random
        repeats); the model's when trained.
    :param augment: Point-MAE's scale-and-translate augmentation (default for "train").
    :param strict: raise ``ValueError`` naming an unreadable file instead of skipping it.
    :param normalize: center each cloud and scale it into the unit sphere.
    :param labels: class subfolders (True), none (False: label -1) or auto (None: when ``root``
        holds subfolders and no files of its own).
    :param extensions: the file suffixes read (case-insensitive).
    :param mesh_points: surface points sampled from a mesh before resampling.
    :param deterministic: fix each file's mesh sampling and resampling by its name and ``seed``,
        so that ``maeflow eval`` gives the same numbers every time (default: whenever ``augment``
        is off — the test split, and the train split as probes read it); augmented training
        items are drawn afresh each epoch.
    :param seed: the seed of the deterministic draws.
    :param split_file: a file listing the split's files instead of a folder scan, one path per
        line relative to ``root`` (lines starting with ``#`` are skipped), unlabeled; ``{split}``
        in it is replaced by the split name.
    """
    check_split(split)
    if not isinstance(normalize, bool):
        raise ValueError(f"point-cloud dataset option normalize must be true (scale each cloud into the unit sphere) "
                         f"or false (points as read), got {normalize!r}")  # fmt: skip
    if split_file is not None:
        index = _listed_files(root, split_file.replace("{split}", split))
    else:
        folder = split_folder(root, split, aliases=("val",) if split == "test" else (), what="point-cloud dataset")
        index = scan_folder(folder, extensions, labels=labels, what="point-cloud dataset")
    codec = pointcloud_codec(split, num_points, augment, normalize, mesh_points, deterministic, seed)
    return FolderDataset(index, load=codec.load, transform=codec.transform, strict=strict, what="point-cloud dataset")


def pointcloud_codec(
    split: str = "train",
    num_points: int = 1024,
    augment: bool | None = None,
    normalize: bool = True,
    mesh_points: int = 8192,
    deterministic: bool | None = None,
    seed: int = 0,
) -> SampleCodec:
    """How ``pointcloud_folder`` reads one file (or its bytes in a shard, as an in-memory file
    with the member's name: the readers go by the suffix and seed by the name); its options."""
    check_split(split)
    augment = split == "train" if augment is None else augment
    # un-augmented items (test split, probes' train features) must not change between reads
    deterministic = not augment if deterministic is None else deterministic
    loader = _PointLoader(num_points, mesh_points, normalize, deterministic, seed)
    return SampleCodec(load=loader, transform=ScaleAndTranslate() if augment else None)


def _listed_files(root: str | None, split_file: str) -> FolderIndex:
    base = check_root(root, "point-cloud dataset")
    listing = Path(split_file).expanduser()
    if not listing.is_file():
        raise ValueError(f"point-cloud split file does not exist: {listing}")
    names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not names:
        raise ValueError(f"point-cloud split file lists no files: {listing}")
    return FolderIndex(root=base, samples=[(base / n, -1) for n in names], classes=[])


def synthetic_shapes(
    split: str = "train",
    num_points: int = 1024,
    size: int | None = None,
    seed: int = 0,
    classes: list[str] | None = None,
    jitter: float = 0.01,
    augment: bool | None = None,
) -> SyntheticShapes:
    """Generated primitives (sphere, cube, cylinder, cone, torus, pyramid, octahedron, capsule)
    with random rotation, anisotropic scale and jitter, on the unit sphere, as
    (``num_points``, 3) tensors labeled by primitive; nothing is read or downloaded.
    Deterministic by (``seed``, split, index), disjoint train/test draws, balanced classes.

    :param num_points: points per cloud; the model's when trained.
    :param size: clouds per split; default 2,048 for "train", 512 for "test".
    :param seed: fixes every cloud.
    :param classes: the primitives to draw (their order gives the labels); default all eight.
    :param jitter: the std of the Gaussian noise added to each point (clipped at 5 std).
    :param augment: Point-MAE's scale-and-translate augmentation (default for "train").
    """
    check_split(split)
    size = (2048 if split == "train" else 512) if size is None else size
    augment = split == "train" if augment is None else augment
    return SyntheticShapes(
        split, num_points, size, seed, classes, jitter, transform=ScaleAndTranslate() if augment else None
    )
