"""Video datasets and clip transforms.

- ``video_folder``: a folder of video files (mp4, webm, avi, mkv, mov, m4v) decoded with PyAV
  (the ``video`` extra: ``pip install 'maeflow[video]'``), labels from class subfolders when
  present, ``root/train`` and ``root/test`` (or ``root/val``) used for the splits when they
  exist. Unreadable files are skipped and recorded in ``dataset.skipped`` (or raise with
  ``strict=True``); see :mod:`maeflow.data`.
- ``moving_digits``: scikit-learn's handwritten digits (they ship inside scikit-learn: nothing
  is downloaded) moving and bouncing on a dark canvas, one digit per clip, labeled by digit;
  deterministic by ``seed``, with a fixed train/test split of the digit images.

Items are ``(clip (C, T, H, W) float, label)``; ``dataset.display_options`` holds the mean/std
the visualizer needs to undo the normalization.

Clip sampling follows VideoMAE: ``num_frames`` frames ``stride`` apart (16 × 4 on Kinetics),
starting at a random frame for training and centered in the video for evaluation.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from maeflow import import_optional
from maeflow.data import FolderDataset, check_split, scan_folder, split_folder, stratified_split
from maeflow.data.records import Record, SampleCodec
from maeflow_video.decoders import reopenable, resolve_decoder, torchcodec_clip
from maeflow_video.tokenizer import to_hw

VIDEO_EXTENSIONS = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_GREY_MEAN = (0.449,)
IMAGENET_GREY_STD = (0.226,)
# pixel statistics of moving_digits' default train split (seed 0, 16 × 64², 2,000 clips) in [0, 1]
MOVING_DIGITS_MEAN = 0.0586
MOVING_DIGITS_STD = 0.1864
SHORT_POLICIES = ("loop", "pad")
# VideoMAE's multi-scale crop: crop sides are these fractions of the short side
MULTISCALE = (1.0, 0.875, 0.75, 0.66)


def _stats(mean, std, in_chans: int, default) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std: given ones (a scalar or one value is repeated), else ``default``."""
    mean = default[0] if mean is None else mean
    std = default[1] if std is None else std
    out = []
    for name, v in (("mean", mean), ("std", std)):
        v = (float(v),) if isinstance(v, (int, float)) else tuple(float(x) for x in v)
        if len(v) == 1:
            v = v * in_chans
        if len(v) != in_chans:
            raise ValueError(f"{name} has {len(v)} values but the clips have {in_chans} channels")
        out.append(v)
    if any(s <= 0 for s in out[1]):
        raise ValueError(f"std must be positive, got {out[1]}")
    return out[0], out[1]


def _check_in_chans(in_chans: int) -> int:
    if in_chans not in (1, 3):
        raise ValueError(f"in_chans must be 1 (grey) or 3 (RGB), got {in_chans}")
    return in_chans


def _check_positive(**values: int) -> None:
    for name, v in values.items():
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v}")


# --- clip sampling and decoding --------------------------------------------------------------


def clip_indices(num_available: int, num_frames: int, stride: int, start: int | None, short: str = "loop") -> list[int]:
    """Frame indices of one clip: ``num_frames`` frames ``stride`` apart from ``start``
    (``None``: centered). A video shorter than the clip's span ``(num_frames − 1)·stride + 1``
    starts at 0 and is ``short="loop"``-ed (indices wrap around: the video plays again) or
    ``"pad"``-ded (the last frame repeats)."""
    if short not in SHORT_POLICIES:
        raise ValueError(f"short must be one of {', '.join(SHORT_POLICIES)}, got {short!r}")
    if num_available < 1:
        raise ValueError("the video has no frames")
    span = (num_frames - 1) * stride + 1
    if num_available >= span:
        latest = num_available - span
        begin = latest // 2 if start is None else min(max(int(start), 0), latest)
        return [begin + i * stride for i in range(num_frames)]
    offsets = [i * stride for i in range(num_frames)]
    if short == "loop":
        return [o % num_available for o in offsets]
    return [min(o, num_available - 1) for o in offsets]


def _av():
    """PyAV, an extra (``maeflow[video]``): needed to read video files, not to build models."""
    return import_optional("av", install="maeflow[video]", needed_for="reading video files")


def _open(source: str | Path | bytes):
    """A PyAV container over a path or a file's bytes."""
    return _av().open(io.BytesIO(source) if isinstance(source, bytes) else str(source))


def count_frames(path: str | Path | bytes) -> int:
    """Frames in the first video stream: from the container's header when it says, else by
    counting the stream's packets (no decoding)."""
    with _open(path) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        if stream.frames > 0:
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.size > 0)


def _decode(path: str | Path | bytes, wanted: set[int] | None, last: int | None) -> dict[int, np.ndarray]:
    """Decode frames of the first video stream as RGB (H, W, 3) uint8 arrays: those whose
    index is in ``wanted`` (all when ``None``), stopping after index ``last``."""
    frames: dict[int, np.ndarray] = {}
    with _open(path) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if wanted is None or i in wanted:
                frames[i] = frame.to_ndarray(format="rgb24")
            if last is not None and i >= last:
                break
    return frames


def read_clip(
    path: str | Path | BinaryIO,
    num_frames: int = 16,
    stride: int = 4,
    random_start: bool = False,
    short: str = "loop",
    generator: torch.Generator | None = None,
    decoder: str = "pyav",
) -> torch.Tensor:
    """One clip of a video file (a path or a binary file object) as uint8 (T, H, W, 3) RGB.

    The start is random (``random_start``, training) or centered. ``decoder`` is "pyav",
    "torchcodec" or "auto" (:mod:`maeflow_video.decoders`). With PyAV only the frames up to the
    clip's last one are decoded, and when the header's frame count is wrong (the stream ends
    early) the whole video is decoded and the clip re-sampled from the frames that exist;
    torchcodec counts the frames by scanning the file and decodes just the clip's frames.
    """
    path = reopenable(path)
    span = (num_frames - 1) * stride + 1

    def pick(n: int) -> list[int]:
        start = int(torch.randint(0, n - span + 1, (1,), generator=generator)) if random_start and n > span else None
        return clip_indices(n, num_frames, stride, start, short)

    if resolve_decoder(decoder) == "torchcodec":
        return torchcodec_clip(path, pick)
    idx = pick(count_frames(path))
    frames = _decode(path, set(idx), max(idx))
    if not all(i in frames for i in idx):
        frames = _decode(path, None, None)
        if not frames:
            raise ValueError("no frame could be decoded")
        idx = pick(len(frames))
    return torch.from_numpy(np.stack([frames[i] for i in idx]))  # (T, H, W, 3)


def check_video(path: str | Path | BinaryIO) -> None:
    """Cheap up-front check: the container opens, has a video stream and its first frame decodes."""
    if not _decode(reopenable(path), {0}, 0):
        raise ValueError("no frame could be decoded")


# --- transforms ------------------------------------------------------------------------------


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(T, C, H, W) float → (T, C, *size), bilinear with antialiasing."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


class ClipTransform:
    """uint8 (T, H, W, 3) clip → normalized float (C, T, H, W) of ``img_size``.

    ``train``: VideoMAE's multi-scale crop — crop height and width each a fraction (``scales``,
    at most one step apart) of the short side, at a random place, resized to ``img_size`` —
    then a horizontal flip with probability 1/2 (``hflip``). Evaluation: resize the short side
    to ``img_size`` and center-crop. One channel (``in_chans=1``) is the luminance.
    """

    def __init__(self, img_size, in_chans: int, mean, std, train: bool, hflip: bool = True,
                 scales: Sequence[float] = MULTISCALE, generator: torch.Generator | None = None):  # fmt: skip
        self.size = to_hw(img_size)
        self.in_chans = in_chans
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)
        self.train = train
        self.hflip = hflip
        self.scales = tuple(float(s) for s in scales)
        if not self.scales or not all(0 < s <= 1 for s in self.scales):
            raise ValueError(f"scales must be fractions in (0, 1], got {tuple(scales)}")
        self.generator = generator

    def _rand(self, high: int) -> int:
        return int(torch.randint(0, high, (1,), generator=self.generator))

    def _multiscale_crop(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[-2:]
        base = min(H, W)
        sides = [max(1, int(base * s)) for s in self.scales]
        pairs = [(h, w) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= 1]
        ch, cw = pairs[self._rand(len(pairs))]
        top, left = self._rand(H - ch + 1), self._rand(W - cw + 1)
        return _resize(x[..., top : top + ch, left : left + cw], self.size)

    def _center_crop(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[-2:]
        oh, ow = self.size
        scale = max(oh / H, ow / W)  # short side (relative to the target) to the target size
        nh, nw = max(oh, round(H * scale)), max(ow, round(W * scale))
        x = _resize(x, (nh, nw))
        top, left = (nh - oh) // 2, (nw - ow) // 2
        return x[..., top : top + oh, left : left + ow]

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        x = clip.permute(0, 3, 1, 2).float().div_(255)  # (T, 3, H, W)
        x = self._multiscale_crop(x) if self.train else self._center_crop(x)
        if self.train and self.hflip and self._rand(2):
            x = x.flip(-1)
        x = x.clamp(0, 1)  # antialiased resampling may overshoot slightly
        if self.in_chans == 1:
            x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        x = (x - self.mean) / self.std
        return x.permute(1, 0, 2, 3).contiguous()  # (C, T, H, W)


# --- video folders ---------------------------------------------------------------------------


def video_folder(
    split: str = "train",
    root: str | None = None,
    num_frames: int = 16,
    stride: int = 4,
    img_size: int | Sequence[int] = 224,
    in_chans: int = 3,
    augment: bool | None = None,
    strict: bool = False,
    labels: bool | None = None,
    recursive: bool = True,
    verify: bool | None = None,
    short: str = "loop",
    mean: Sequence[float] | float | None = None,
    std: Sequence[float] | float | None = None,
    scales: Sequence[float] = MULTISCALE,
    hflip: bool = True,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    decoder: str = "auto",
    repeats: int = 1,
) -> FolderDataset:
    """A folder of videos (mp4/webm/avi/mkv/mov/m4v, decoded with PyAV) as normalized
    (``in_chans``, ``num_frames``, H, W) clips, one clip per video and read.

    Training items (``augment``) draw a random clip start, VideoMAE's multi-scale crop and a
    flip; without it the clip is centered in time and space (short side resized to
    ``img_size``, center crop).

    :param root: the folder; the split reads ``root/<split>`` (``root/val`` also serves "test")
        when it exists, else ``root`` itself.
    :param num_frames: frames per clip; the model's when trained.
    :param stride: frames between two sampled frames of a clip (VideoMAE's sampling rate).
    :param img_size: the output height and width (an int: square); the model's when trained.
    :param in_chans: 3 (RGB) or 1 (luminance); the model's when trained.
    :param augment: the training augmentation (default for "train"); otherwise centered clips.
    :param strict: raise ``ValueError`` naming an unreadable file instead of skipping it.
    :param labels: class subfolders (True), none (False: label -1) or auto (None: when ``root``
        holds subfolders and no files of its own).
    :param recursive: also read the files of nested folders (within each class folder).
    :param verify: decode the first frame of every file up front (None: for folders of up to
        50,000 files).
    :param short: a video shorter than the clip's span ``(num_frames − 1)·stride + 1`` is
        "loop"-ed (it plays again) or "pad"-ded (its last frame repeats), see :func:`clip_indices`.
    :param mean: per-channel normalization mean (one value or one per channel); default
        ImageNet's (its grey value for 1 channel).
    :param std: per-channel normalization std (one value or one per channel); default
        ImageNet's (its grey value for 1 channel).
    :param scales: the multi-scale crop's side lengths, as fractions of the short side (height
        and width each one of them, at most one step apart).
    :param hflip: flip half of the training clips horizontally.
    :param extensions: the file suffixes read (case-insensitive).
    :param decoder: "auto" (torchcodec where it loads, else PyAV), "torchcodec" or "pyav".
    :param repeats: VideoMAE's repeated sampling: each decoded training clip gives this many
        independently augmented clips (and masks); a step then holds ``batch_size × repeats``
        clips. 1 for evaluation clips.
    """
    codec = video_codec(split, num_frames, stride, img_size, in_chans, augment, short, mean, std, scales, hflip,
                        decoder, repeats)  # fmt: skip
    folder = split_folder(root, split, aliases=("val",) if split == "test" else (), what="video_folder")
    index = scan_folder(folder, extensions, labels=labels, recursive=recursive, what="video_folder")
    ds = FolderDataset(index, load=codec.load, transform=codec.transform, strict=strict, check=codec.check,
                       verify=verify, what=f"video_folder {folder}")  # fmt: skip
    codec.apply_attrs(ds)
    return ds


class RepeatedClips:
    """One decoded clip → ``repeats`` independently transformed clips, stacked (R, C, T, H, W)."""

    def __init__(self, transform, repeats: int):
        self.transform, self.repeats = transform, repeats

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.transform(clip) for _ in range(self.repeats)])


def _repeated(transform, repeats: int, augment: bool) -> tuple[object, dict]:
    _check_positive(repeats=repeats)
    if repeats == 1 or not augment:
        return transform, {}
    return RepeatedClips(transform, int(repeats)), {"repeats": int(repeats)}


def video_codec(
    split: str = "train",
    num_frames: int = 16,
    stride: int = 4,
    img_size: int | Sequence[int] = 224,
    in_chans: int = 3,
    augment: bool | None = None,
    short: str = "loop",
    mean: Sequence[float] | float | None = None,
    std: Sequence[float] | float | None = None,
    scales: Sequence[float] = MULTISCALE,
    hflip: bool = True,
    decoder: str = "auto",
    repeats: int = 1,
) -> SampleCodec:
    """How ``video_folder`` reads one video (a file or its bytes in a shard): a clip decoded
    with ``decoder``, then the clip transform (``repeats`` times); the options are
    ``video_folder``'s."""
    check_split(split)
    in_chans = _check_in_chans(in_chans)
    _check_positive(num_frames=num_frames, stride=stride)
    if short not in SHORT_POLICIES:
        raise ValueError(f"short must be one of {', '.join(SHORT_POLICIES)}, got {short!r}")
    default = (IMAGENET_MEAN, IMAGENET_STD) if in_chans == 3 else (IMAGENET_GREY_MEAN, IMAGENET_GREY_STD)
    mean, std = _stats(mean, std, in_chans, default)
    augment = split == "train" if augment is None else augment
    chosen = resolve_decoder(decoder)  # here, once: the log line, and a clear error for a decoder that is missing
    if chosen == "pyav":
        _av()  # here, once, rather than as a "bad file" for every video when PyAV is missing
    load = functools.partial(read_clip, num_frames=num_frames, stride=stride, random_start=augment, short=short,
                             decoder=chosen)  # fmt: skip
    transform = ClipTransform(img_size, in_chans, mean, std, train=augment, hflip=hflip, scales=scales)
    transform, attrs = _repeated(transform, repeats, augment)
    return SampleCodec(load=load, transform=transform, check=check_video,
                       attrs={"display_options": {"mean": list(mean), "std": list(std)}, "decoder": chosen, **attrs})


# --- moving digits ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)  # (1797, 8, 8) in [0, 1]


digit_split = stratified_split  # the split every digits-based dataset shares


def bounce(start: float, velocity: float, steps: int, low: float, high: float) -> np.ndarray:
    """Positions over ``steps`` frames of a point moving at ``velocity`` per frame between the
    walls ``low`` and ``high``, reflected at each wall (elastic bounce)."""
    width = high - low
    if width <= 0:
        return np.full(steps, low, dtype=np.float64)
    raw = (start - low) + velocity * np.arange(steps)
    folded = np.mod(raw, 2 * width)  # unfold the reflections: a triangle wave
    return low + np.where(folded > width, 2 * width - folded, folded)


class MovingDigits(Dataset):
    """Clips of one scikit-learn digit moving in a straight line and bouncing off the walls.

    Item ``i`` is a pure function of (``seed``, split, ``i``): the digit image is
    ``images[i % len(images)]`` (every image of the split used equally often), the start
    position and velocity come from ``numpy.random.default_rng((seed, split, i))``. Clips are
    (``in_chans``, ``num_frames``, H, W), normalized; the digit's pixels lie in [0, 1] before.
    ``augment`` plays a clip backwards with probability 1/2 (a bouncing digit played backwards
    is another bouncing digit) using ``torch``'s random state.
    """

    num_classes = 10

    def __init__(self, digits: torch.Tensor, labels: np.ndarray, num_samples: int, num_frames: int,
                 img_size: tuple[int, int], in_chans: int, speed: tuple[float, float], seed: int, split_id: int,
                 mean: tuple[float, ...], std: tuple[float, ...], augment: bool):  # fmt: skip
        self.digits = digits.numpy()  # (N, d, d) in [0, 1]
        self.labels = labels
        self.num_samples = num_samples
        self.num_frames = num_frames
        self.img_size = img_size
        self.in_chans = in_chans
        self.speed = speed
        self.seed = seed
        self.split_id = split_id
        self.augment = augment
        self.finish = DigitClipFinish(mean, std, augment)
        self.display_options = {"mean": list(mean), "std": list(std)}
        self.skipped: list[tuple[str, str]] = []  # generated data: nothing can be unreadable

    def __len__(self) -> int:
        return self.num_samples

    @property
    def targets(self) -> list[int]:
        return [int(self.labels[i % len(self.labels)]) for i in range(self.num_samples)]

    def raw_clip(self, idx: int) -> tuple[torch.Tensor, int]:
        """Un-normalized (T, H, W) clip in [0, 1] and its label."""
        if not 0 <= idx < self.num_samples:
            raise IndexError(f"index {idx} out of range for {self.num_samples} clips")
        k = idx % len(self.labels)
        digit = self.digits[k]
        d = digit.shape[-1]
        H, W = self.img_size
        rng = np.random.default_rng((self.seed, self.split_id, idx))
        angle = rng.uniform(0, 2 * math.pi)
        speed = rng.uniform(*self.speed) * min(H, W) / 64  # pixels per frame, relative to a 64² canvas
        ys = bounce(rng.uniform(0, H - d), speed * math.sin(angle), self.num_frames, 0, H - d)
        xs = bounce(rng.uniform(0, W - d), speed * math.cos(angle), self.num_frames, 0, W - d)
        clip = np.zeros((self.num_frames, H, W), dtype=np.float32)
        for t, (y, x) in enumerate(zip(np.rint(ys).astype(int), np.rint(xs).astype(int), strict=True)):
            clip[t, y : y + d, x : x + d] = digit
        return torch.from_numpy(clip), int(self.labels[k])

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        clip, label = self.raw_clip(idx)
        return self.finish(clip), label

    def records(self) -> Iterator[Record]:
        """The un-normalized clips as ``.npy`` (T, H, W) float32 records (for ``maeflow
        shard``; ``moving_digits_codec`` reads them back and finishes them as here)."""
        for i in range(self.num_samples):
            clip, label = self.raw_clip(i)
            buf = io.BytesIO()
            np.save(buf, clip.numpy())
            yield Record(f"clip_{i:06d}.npy", buf.getvalue(), label, {"index": i})


class DigitClipFinish:
    """(T, H, W) clip in [0, 1] → optionally played backwards (``augment``, probability 1/2
    from torch's random state), normalized (C, T, H, W)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], augment: bool):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1, 1)
        self.augment = augment

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        x = clip.numpy()  # (T, H, W); numpy on purpose: tiny per-item ops, no thread-pool overhead
        if self.augment and int(torch.randint(0, 2, (1,))):
            x = x[::-1]
        x = (x[None] - self.mean) / self.std  # (C, T, H, W)
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def load_npy(source) -> torch.Tensor:
    """A ``.npy`` array (path or file object) as a tensor."""
    return torch.from_numpy(np.load(source, allow_pickle=False))


def moving_digits_codec(
    split: str = "train",
    in_chans: int = 1,
    augment: bool | None = None,
    mean: Sequence[float] | float | None = None,
    std: Sequence[float] | float | None = None,
    repeats: int = 1,
) -> SampleCodec:
    """How ``moving_digits`` records (clips stored as ``.npy``, see :meth:`MovingDigits.records`)
    become items, exactly as ``moving_digits`` makes them; ``repeats`` as for ``video_folder``."""
    check_split(split)
    in_chans = _check_in_chans(in_chans)
    mean, std = _stats(mean, std, in_chans, ((MOVING_DIGITS_MEAN,), (MOVING_DIGITS_STD,)))
    augment = split == "train" if augment is None else augment
    transform, attrs = _repeated(DigitClipFinish(mean, std, augment), repeats, augment)
    return SampleCodec(load=load_npy, transform=transform,
                       attrs={"display_options": {"mean": list(mean), "std": list(std)}, **attrs})

def moving_digits(
    split: str = "train",
    num_frames: int = 16,
    img_size: int | Sequence[int] = 64,
    in_chans: int = 1,
    num_samples: int | None = None,
    digit_size: int | None = None,
    speed: Sequence[float] = (1.5, 3.5),
    seed: int = 0,
    test_fraction: float = 0.2,
    augment: bool | None = None,
    mean: Sequence[float] | float | None = None,
    std: Sequence[float] | float | None = None,
) -> MovingDigits:
    """Moving-digits clips (``in_chans``, ``num_frames``, ``img_size``), labels 0–9: one
    scikit-learn digit moving in a straight line and bouncing off the walls (see
    :class:`MovingDigits`); nothing is downloaded.

    The digit images are split once (stratified: 1,438 train / 359 test images), so test clips
    show handwriting never seen in training. Item ``i`` is a pure function of (``seed``, split,
    ``i``).

    :param num_frames: frames per clip; the model's when trained.
    :param img_size: the canvas height and width (an int: square); the model's when trained.
    :param in_chans: 1 or 3 (the grey canvas repeated); the model's when trained.
    :param num_samples: clips per split; default 2,000 for "train", 500 for "test".
    :param digit_size: the digit's side on the canvas in pixels; default 7/16 of the short side
        (28 px on 64², as in Moving MNIST).
    :param speed: the (low, high) range of pixels per frame on a 64² canvas (scaled with the size).
    :param seed: fixes the image split and every clip's start position and velocity.
    :param test_fraction: the share of each class's digit images that goes to "test".
    :param augment: play half of the clips backwards (default for "train").
    :param mean: normalization mean (one value or one per channel); default
        ``MOVING_DIGITS_MEAN`` (0.0586).
    :param std: normalization std (one value or one per channel); default
        ``MOVING_DIGITS_STD`` (0.1864).
    """
    check_split(split)
    in_chans = _check_in_chans(in_chans)
    H, W = to_hw(img_size)
    if num_samples is None:
        num_samples = 2000 if split == "train" else 500
    _check_positive(num_frames=num_frames, num_samples=num_samples, height=H, width=W)
    d = digit_size if digit_size is not None else max(1, min(H, W) * 7 // 16)
    if not 1 <= d <= min(H, W):
        raise ValueError(f"digit_size must be between 1 and the canvas side {min(H, W)}, got {d}")
    lo, hi = (float(s) for s in speed)
    if not 0 <= lo <= hi:
        raise ValueError(f"speed must be (low, high) with 0 <= low <= high, got {tuple(speed)}")
    mean, std = _stats(mean, std, in_chans, ((MOVING_DIGITS_MEAN,), (MOVING_DIGITS_STD,)))
    images, labels = _digits_arrays()
    train_idx, test_idx = digit_split(labels, test_fraction, seed)
    idx = train_idx if split == "train" else test_idx
    x = torch.from_numpy(images[idx]).unsqueeze(1)  # (N, 1, 8, 8)
    x = F.interpolate(x, size=(d, d), mode="bilinear", align_corners=False).clamp_(0, 1)[:, 0]  # (N, d, d)
    augment = split == "train" if augment is None else augment
    return MovingDigits(x, labels[idx], num_samples, num_frames, (H, W), in_chans, (lo, hi), seed,
                        0 if split == "train" else 1, mean, std, augment)  # fmt: skip
