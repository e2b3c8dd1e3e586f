"""Reading point clouds and meshes from files, and sampling meshes into points.

Point files: ``.npy`` (an (N, ≥3) array), ``.txt`` / ``.xyz`` (one point per line, values split
by spaces or commas, ``#`` comments; ModelNet's ``x,y,z,nx,ny,nz`` files work), ``.ply``
(vertex x/y/z of ASCII, binary little- or big-endian files). Meshes: ``.off`` and ``.obj``
(polygons are fan-triangulated; points are drawn on the surface with probability proportional
to triangle area). Only xyz is kept. Every reader raises a one-line ``ValueError`` naming the
file for a malformed file (whatever the damage) or NaN/inf coordinates.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

POINT_EXTENSIONS = (".npy", ".txt", ".xyz", ".ply")
MESH_EXTENSIONS = (".off", ".obj")
EXTENSIONS = POINT_EXTENSIONS + MESH_EXTENSIONS


# ---------------------------------------------------------------- meshes → points


def triangle_areas(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(V, 3) vertices, (F, 3) vertex indices → (F,) triangle areas."""
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    return 0.5 * torch.linalg.cross(b - a, c - a).norm(dim=-1)


def sample_surface(
    vertices: torch.Tensor, faces: torch.Tensor, num_points: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``num_points`` points (n, 3) uniformly on a triangle mesh's surface: a triangle with
    probability proportional to its area, then a uniform point in it (square-root barycentric
    trick). A mesh without area (no faces, or all degenerate) falls back to its vertices."""
    vertices = vertices.double()
    if faces.numel():
        areas = triangle_areas(vertices, faces)
        if float(areas.sum()) > 0:
            tri = torch.multinomial(areas, num_points, replacement=True, generator=generator)  # (n,)
            u, v = torch.rand(2, num_points, 1, generator=generator, dtype=torch.float64)
            su = u.sqrt()
            a, b, c = (vertices[faces[tri, i]] for i in range(3))
            return ((1 - su) * a + su * (1 - v) * b + su * v * c).float()
    return vertices.float()


# ---------------------------------------------------------------- file formats


def _finite(points: np.ndarray, path: str) -> np.ndarray:
    if points.ndim != 2 or points.shape[1] < 3 or points.shape[0] == 0:
        raise ValueError(f"{path}: expected points shaped (N, 3) or wider, got {points.shape}")
    if not np.isfinite(points[:, :3]).all():
        raise ValueError(f"{path}: NaN or inf coordinates")
    return points[:, :3]


# Each parser takes the file's bytes and the name its errors give.


def _read_npy(data: bytes, path: str) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False).astype(np.float64)


def _read_text(data: bytes, path: str) -> np.ndarray:
    rows = []
    for line in data.decode().splitlines():
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if line:
            rows.append([float(v) for v in line.split()])
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise ValueError(f"{path}: lines have different numbers of values ({sorted(widths)})")
    return np.asarray(rows, dtype=np.float64)


_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


def _read_ply(data: bytes, path: str) -> np.ndarray:
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise ValueError(f"{path}: not a PLY file (no 'ply' magic or no end_header)")
    body_start = data.index(b"\n", end) + 1
    fmt = None
    elements: list[tuple[str, int, list[tuple[str, str | None]]]] = []  # (name, count, [(prop, type|None=list)])
    for line in data[:end].decode("ascii", errors="replace").splitlines()[1:]:
        parts = line.split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "element":
            elements.append((parts[1], int(parts[2]), []))
        elif parts[0] == "property" and elements:
            is_list = parts[1] == "list"
            elements[-1][2].append((parts[-1], None if is_list else parts[1]))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise ValueError(f"{path}: unknown PLY format {fmt!r}")
    names = [e[0] for e in elements]
    if "vertex" not in names:
        raise ValueError(f"{path}: PLY file has no vertex element")
    if fmt == "ascii":
        lines = data[body_start:].decode("ascii").split("\n")
        skip = 0
        for name, count, props in elements:
            if name == "vertex":
                rows = [ln.split() for ln in lines[skip : skip + count]]
                cols = [p for p, _ in props]
                try:
                    table = np.asarray(rows, dtype=np.float64)
                except ValueError as exc:
                    raise ValueError(f"{path}: malformed PLY vertex data ({exc})") from exc
                if table.shape != (count, len(cols)):
                    raise ValueError(f"{path}: PLY vertex data is truncated or malformed")
                break
            skip += count
    else:
        order = "<" if fmt == "binary_little_endian" else ">"
        offset = body_start
        for name, count, props in elements:
            if any(t is None for _, t in props):
                raise ValueError(f"{path}: list properties before/in the vertex element are not supported")
            try:
                dtype = np.dtype([(p, order + _PLY_TYPES[t]) for p, t in props])
            except KeyError as exc:
                raise ValueError(f"{path}: unknown PLY property type {exc}") from exc
            if name == "vertex":
                if len(data) < offset + count * dtype.itemsize:
                    raise ValueError(f"{path}: PLY vertex data is truncated")
                rec = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
                cols = [p for p, _ in props]
                table = np.stack([rec[p].astype(np.float64) for p in cols], axis=1)
                break
            offset += count * dtype.itemsize
    try:
        return table[:, [cols.index(a) for a in ("x", "y", "z")]]
    except ValueError as exc:
        raise ValueError(f"{path}: PLY vertices lack x/y/z properties") from exc


def _fan(polygon: list[int]) -> list[list[int]]:
    return [[polygon[0], polygon[i], polygon[i + 1]] for i in range(1, len(polygon) - 1)]


def _read_off(data: bytes, path: str) -> tuple[np.ndarray, np.ndarray]:
    tokens = [ln.split("#", 1)[0].strip() for ln in data.decode().splitlines()]
    tokens = [t for t in tokens if t]
    if not tokens or not tokens[0].startswith("OFF"):
        raise ValueError(f"{path}: not an OFF file (no OFF header)")
    head = tokens[0][3:].split()  # ModelNet files sometimes put the counts on the header line
    rest = tokens[1:]
    if not head:
        head, rest = rest[0].split(), rest[1:]
    nv, nf = int(head[0]), int(head[1])
    if len(rest) < nv + nf:
        raise ValueError(f"{path}: OFF file is truncated ({len(rest)} lines for {nv} vertices and {nf} faces)")
    vertices = np.asarray([[float(v) for v in ln.split()[:3]] for ln in rest[:nv]], dtype=np.float64)
    faces = []
    for ln in rest[nv : nv + nf]:
        vals = [int(v) for v in ln.split()]
        faces += _fan(vals[1 : 1 + vals[0]])
    return vertices, np.asarray(faces, dtype=np.int64).reshape(-1, 3)


def _read_obj(data: bytes, path: str) -> tuple[np.ndarray, np.ndarray]:
    vertices, faces = [], []
    for ln in data.decode().splitlines():
        parts = ln.split()
        if not parts:
            continue
        if parts[0] == "v":
            vertices.append([float(v) for v in parts[1:4]])
        elif parts[0] == "f":
            # "f 1 2 3", "f 1/1/1 2/2/2 ...", negative indices count from the end
            idx = [int(re.split("/", p)[0]) for p in parts[1:]]
            idx = [i - 1 if i > 0 else len(vertices) + i for i in idx]
            faces += _fan(idx)
    if not vertices:
        raise ValueError(f"{path}: OBJ file has no vertices")
    return np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64).reshape(-1, 3)


def read_points(
    source: str | os.PathLike | BinaryIO, num_mesh_points: int = 8192, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Points (N, 3) float32 from a point or mesh file: a path, or a binary file object whose
    ``name`` gives the format by its suffix (a shard member). Meshes are sampled with
    ``num_mesh_points`` surface points (area-weighted, from ``generator``)."""
    is_path = isinstance(source, (str, os.PathLike))
    path = str(source) if is_path else str(getattr(source, "name", "") or "<file object>")
    ext = Path(path).suffix.lower()
    try:
        data = Path(source).read_bytes() if is_path else source.read()
        if ext in MESH_EXTENSIONS:
            vertices, faces = (_read_off if ext == ".off" else _read_obj)(data, path)
            _finite(vertices, path)
            if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
                raise ValueError(f"{path}: face refers to a vertex that does not exist")
            return sample_surface(torch.from_numpy(vertices), torch.from_numpy(faces), num_mesh_points, generator)
        reader = {".npy": _read_npy, ".txt": _read_text, ".xyz": _read_text, ".ply": _read_ply}.get(ext)
        if reader is None:
            raise ValueError(f"{path}: unsupported point-cloud file type {ext!r} (known: {', '.join(EXTENSIONS)})")
        return torch.from_numpy(np.ascontiguousarray(_finite(reader(data, path), path))).float()
    except ValueError as exc:
        if path in str(exc) and "\n" not in str(exc):
            raise
        raise ValueError(f"{path}: {_one_line(exc)}") from exc
    except Exception as exc:  # whatever a damaged file makes a parser raise (IndexError, numpy's TokenError, ...)
        raise ValueError(f"{path}: cannot read ({type(exc).__name__}: {_one_line(exc)})") from exc


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


# ---------------------------------------------------------------- writing (tests, conversions)


def write_ply(path: str | os.PathLike, points: torch.Tensor | np.ndarray, binary: bool = True) -> Path:
    """Write (N, 3) points as a PLY vertex list (binary little-endian or ASCII)."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    header = (f"ply\nformat {'binary_little_endian' if binary else 'ascii'} 1.0\nelement vertex {len(pts)}\n"
              "property float x\nproperty float y\nproperty float z\nend_header\n")  # fmt: skip
    path = Path(path)
    if binary:
        path.write_bytes(header.encode("ascii") + pts.astype("<f4").tobytes())
    else:
        path.write_text(header + "".join(f"{x} {y} {z}\n" for x, y, z in pts))
    return path
