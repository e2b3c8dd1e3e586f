"""JPEG decoding and MAE augmentation on the device, one batch at a time.

CPU workers cannot feed a ViT-B MAE step on a current GPU (PIL decode + RandomResizedCrop
reaches about a third of the model's rate with 15 workers, see ``shared/PERFORMANCE.md``).
This path moves the expensive parts next to the model:

1. DataLoader workers only read the file bytes (:class:`EncodedImageDataset`; a file that is
   not a JPEG is decoded there with PIL), and draw the sample's augmentation parameters;
   :func:`collate_encoded` keeps the variable-length bytes as a list (:class:`EncodedBatch`);
2. :func:`decode_images` decodes the whole batch with ``torchvision.io.decode_jpeg(list,
   device=...)`` (nvJPEG on CUDA; the same call runs on the CPU, which the tests use);
   :func:`decode_batch` adds the fallbacks for files nvJPEG refuses and the bad-file handling;
3. :class:`DeviceAugment` applies the MAE recipe to the decoded tensors — RandomResizedCrop
   (scale 0.2–1, ratio 3/4–4/3, bicubic with antialias), horizontal flip, normalization —
   with crop boxes sampled exactly as torchvision's ``RandomResizedCrop.get_params`` does
   (:func:`sample_crop_boxes`, vectorized, on the host so no device sync is needed), or the
   evaluation crop (short side to ``img_size / crop_pct``, center crop) when ``augment=False``.
   On CUDA the crops of a batch are resampled together by two batched matrix products with
   the antialiasing weights of ``F.interpolate(antialias=True)`` (:func:`resized_crops`): a few
   kernels per batch rather than several per image.

:func:`folder_pipeline` packs the three as a :class:`maeflow.data.DevicePipeline`, which the
``image_folder`` dataset offers (``data.device_pipeline``: used on CUDA by default, the usual
CPU workers elsewhere); the trainer's loader (``maeflow.data.build_dataloader``) runs
it, with the next batch prepared on a side stream while the current step runs.

torchvision 0.29 marks ``torchvision.io``'s codecs deprecated in favour of TorchCodec (its
decoders take the same batched-on-device approach); they work unchanged.

Value semantics: resampling runs in float32 on [0, 1] pixels and the result is clamped to
[0, 1] before normalization (the CPU pipeline resamples uint8 and so clamps and rounds; the
rounding, at most 1/510, is not reproduced).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from maeflow.data import DevicePipeline
from maeflow_image.data import IMAGENET_MEAN, IMAGENET_STD, load_image

JPEG_MAGIC = b"\xff\xd8"  # start-of-image marker: every JPEG file begins with it
CROP_ATTEMPTS = 10  # RandomResizedCrop's tries before the central-crop fallback


# ---------------------------------------------------------------------------------------------
# reading bytes in workers


class EncodedImageDataset(Dataset):
    """Items ``((data, draws, path), label)`` for the device path, cheap enough for workers.

    ``data``: the file's bytes as a (n,) uint8 tensor when it is a JPEG (decoded later, batched,
    on the device); any other image file (PNG, WebP, ...) is decoded here with PIL into a
    (C, H, W) uint8 tensor (``channels``: 3 RGB, 1 grey). A file that cannot be read gives
    empty bytes; the batch decode then records it (see :func:`decode_batch`). ``draws``:
    ``num_draws`` uniform numbers from torch's global RNG, the sample's augmentation parameters
    (the trainer seeds that RNG per sample, so they follow the sample). ``samples``:
    ``(path, label)`` pairs, e.g. ``maeflow.data.scan_folder(root, (".jpg", ".jpeg")).samples``.
    """

    def __init__(self, samples: Sequence[tuple[str | os.PathLike, int]], num_draws: int = 0, channels: int = 3):
        if len(samples) == 0:
            raise ValueError("EncodedImageDataset needs at least one file")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.samples = [(Path(p), int(label)) for p, label in samples]
        self.num_draws = int(num_draws)
        self.channels = channels

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int) -> tuple[tuple[torch.Tensor, torch.Tensor, str], int]:
        path, label = self.samples[idx]
        try:
            raw = path.read_bytes()
        except OSError:
            raw = b""
        data = torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
        if raw and not raw.startswith(JPEG_MAGIC):
            try:  # not for nvJPEG: decode with PIL, as the CPU pipeline does
                img = np.asarray(load_image(path, "RGB" if self.channels == 3 else "L"))
                data = torch.from_numpy(img.copy()).reshape(img.shape[0], img.shape[1], -1).permute(2, 0, 1)
            except Exception:
                pass  # left as bytes: the decode fails and records it
        return (data, torch.rand(self.num_draws), str(path)), label


class EncodedBatch(NamedTuple):
    """One batch of :class:`EncodedImageDataset` items: ``data`` (list of byte tensors or
    decoded (C, H, W) uint8 tensors), ``draws`` (B, K) and ``paths``."""

    data: list[torch.Tensor]
    draws: torch.Tensor
    paths: list[str]


def collate_encoded(raws: Sequence[tuple[torch.Tensor, torch.Tensor, str]]) -> EncodedBatch:
    """Keep the variable-length tensors as a list; stack the draws."""
    return EncodedBatch([d for d, _, _ in raws], torch.stack([r for _, r, _ in raws]), [p for _, _, p in raws])


def decode_images(
    data: list[torch.Tensor], device: str | torch.device = "cpu", channels: int = 3
) -> list[torch.Tensor]:
    """JPEG bytes → list of (C, H, W) uint8 tensors on ``device`` (one batched decode call).

    ``channels`` 3 converts grey/CMYK files to RGB, 1 to grey.
    """
    from torchvision.io import ImageReadMode, decode_jpeg

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    device = torch.device(device)
    out = decode_jpeg(list(data), mode=mode, device=device)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__


def _decode_one(data: torch.Tensor, device: torch.device, channels: int) -> torch.Tensor:
    """One file: nvJPEG (or the CPU's libjpeg), else PIL from the bytes (JPEG variants nvJPEG
    refuses); raises when neither can read it."""
    try:
        return decode_images([data], device, channels)[0]
    except RuntimeError:
        from PIL import Image

        with Image.open(io.BytesIO(data.numpy().tobytes())) as img:
            arr = np.asarray(img.convert("RGB" if channels == 3 else "L"))
        return torch.from_numpy(arr.copy()).reshape(arr.shape[0], arr.shape[1], -1).permute(2, 0, 1).to(device)


def decode_batch(
    data: Sequence[torch.Tensor],
    device: str | torch.device,
    channels: int = 3,
    paths: Sequence[str] | None = None,
    on_bad: Callable[[str, str], None] | None = None,
) -> list[torch.Tensor]:
    """(C, H, W) uint8 images on ``device`` for a batch of :class:`EncodedImageDataset` data:
    JPEG bytes decoded in one call, already decoded tensors moved over.

    When the batched call fails, the files are decoded one at a time (with PIL as the last
    resort); a file nothing can read is reported to ``on_bad(path, reason)`` (which may raise,
    e.g. for ``strict``) and replaced by another image of the batch, so the batch keeps its size.
    """
    device = torch.device(device)
    out: list[torch.Tensor | None] = [None] * len(data)
    jpeg = [i for i, d in enumerate(data) if d.ndim == 1]
    for i, d in enumerate(data):
        if d.ndim == 3:
            out[i] = d.to(device, non_blocking=True)
    if jpeg:
        try:
            for i, img in zip(jpeg, decode_images([data[i] for i in jpeg], device, channels), strict=True):
                out[i] = img
        except RuntimeError:
            for i in jpeg:
                try:
                    out[i] = _decode_one(data[i], device, channels)
                except Exception as exc:  # any decoder error means "this file is bad"
                    if on_bad is not None:
                        on_bad(paths[i] if paths is not None else f"item {i} of the batch", _reason(exc))
    good = [img for img in out if img is not None]
    if not good:
        raise ValueError(f"no readable image in a batch of {len(data)}: {', '.join(paths or [])}")
    return [img if img is not None else good[0] for img in out]


# ---------------------------------------------------------------------------------------------
# crop boxes


def sample_crop_boxes(
    sizes: Sequence[tuple[int, int]],
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
    attempts: int = CROP_ATTEMPTS,
    uniforms: torch.Tensor | None = None,
) -> torch.Tensor:
    """RandomResizedCrop boxes ``(N, 4)`` int64 rows ``(top, left, height, width)`` for images
    of ``sizes`` [(H, W), ...], sampled as ``torchvision.transforms.RandomResizedCrop.get_params``:
    up to ``attempts`` tries of area ∈ scale·H·W (uniform) and log-uniform aspect ratio, the
    first that fits wins; otherwise the central crop with the ratio clamped into ``ratio``.
    Sampling runs on the host (CPU generator), vectorized over images and attempts.
    ``uniforms`` (N, 2·attempts + 2) in [0, 1) replaces the generator's draws: per image, the
    areas, the aspect ratios, then the vertical and horizontal offsets.
    """
    if not 0 < scale[0] <= scale[1]:
        raise ValueError(f"scale must satisfy 0 < min <= max, got {scale}")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio}")
    hw = torch.tensor([list(s) for s in sizes], dtype=torch.float64).reshape(-1, 2)  # (N, 2)
    n = hw.shape[0]
    H, W = hw[:, 0:1], hw[:, 1:2]  # (N, 1)
    area = H * W
    if uniforms is not None:
        if tuple(uniforms.shape) != (n, 2 * attempts + 2):
            raise ValueError(f"uniforms must be ({n}, {2 * attempts + 2}), got {tuple(uniforms.shape)}")
        u = uniforms.to(torch.float64)
        u_area, u_ratio, u_i, u_j = u[:, :attempts], u[:, attempts : 2 * attempts], u[:, -2], u[:, -1]
    else:
        u_area = torch.rand(n, attempts, generator=generator, dtype=torch.float64)
        u_ratio = torch.rand(n, attempts, generator=generator, dtype=torch.float64)
        u_i = torch.rand(n, generator=generator, dtype=torch.float64)
        u_j = torch.rand(n, generator=generator, dtype=torch.float64)
    target = area * (scale[0] + (scale[1] - scale[0]) * u_area)  # (N, A)
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u_ratio
    aspect = torch.exp(log_r)
    w = torch.round(torch.sqrt(target * aspect))  # (N, A)
    h = torch.round(torch.sqrt(target / aspect))
    ok = (w > 0) & (w <= W) & (h > 0) & (h <= H)  # (N, A)
    any_ok = ok.any(dim=1)
    first = torch.where(any_ok, ok.to(torch.int8).argmax(dim=1), torch.zeros_like(any_ok, dtype=torch.long))
    h = h.gather(1, first[:, None])[:, 0]
    w = w.gather(1, first[:, None])[:, 0]
    # position: uniform over the valid offsets, integers as torch.randint(0, H - h + 1) gives
    Hs, Ws = H[:, 0], W[:, 0]
    top = torch.floor(u_i * (Hs - h + 1)).clamp(max=(Hs - h).clamp(min=0))
    left = torch.floor(u_j * (Ws - w + 1)).clamp(max=(Ws - w).clamp(min=0))
    # fallback: central crop, aspect clamped into [ratio[0], ratio[1]]
    in_ratio = Ws / Hs
    fw = torch.where(in_ratio < ratio[0], Ws, torch.where(in_ratio > ratio[1], torch.round(Hs * ratio[1]), Ws))
    fh = torch.where(in_ratio < ratio[0], torch.round(Ws / ratio[0]), Hs)
    ftop, fleft = torch.floor((Hs - fh) / 2), torch.floor((Ws - fw) / 2)
    box = torch.stack([top, left, h, w], dim=1)
    fallback = torch.stack([ftop, fleft, fh, fw], dim=1)
    return torch.where(any_ok[:, None], box, fallback).to(torch.long)


def center_crop_boxes(sizes: Sequence[tuple[int, int]], crop_pct: float = 0.875, square: bool = True) -> torch.Tensor:
    """Evaluation crop as ``(N, 4)`` boxes: the centered square of side ``crop_pct·min(H, W)``
    (= resize the short side to ``S / crop_pct``, then center-crop ``S``). ``square=False`` (a
    non-square output, which the CPU transform resizes to ``(Sh, Sw) / crop_pct`` before the
    crop): the centered ``crop_pct·H × crop_pct·W`` box."""
    if not 0 < crop_pct <= 1:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    rows = []
    for H, W in sizes:
        if square:
            h = w = max(1, int(round(min(H, W) * crop_pct)))
        else:
            h, w = max(1, int(round(H * crop_pct))), max(1, int(round(W * crop_pct)))
        rows.append([(H - h) // 2, (W - w) // 2, h, w])
    return torch.tensor(rows, dtype=torch.long).reshape(-1, 4)


# ---------------------------------------------------------------------------------------------
# crop + resize + flip + normalize on device tensors


def _filter(x: torch.Tensor, interpolation: str) -> torch.Tensor:
    """Antialiasing kernels of ``F.interpolate(..., antialias=True)`` (PIL's): bicubic with
    a = -0.5, or the triangle for bilinear."""
    x = x.abs()
    if interpolation == "bilinear":
        return (1 - x).clamp(min=0)
    a = -0.5
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return torch.where(x < 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


def resample_weights(lengths: torch.Tensor, out_len: int, in_len: int, interpolation: str = "bicubic") -> torch.Tensor:
    """Rows of the antialiased resampling matrix, ``(N, out_len, in_len)``: output ``i`` of a
    crop of length ``lengths[n]`` (starting at 0, zero weight beyond it) as a weighted sum of
    input samples — the same weights ``F.interpolate(mode, align_corners=False, antialias=True)``
    uses, so ``W_h @ crop @ W_wᵀ`` reproduces it."""
    support0 = 2.0 if interpolation == "bicubic" else 1.0
    L = lengths.to(torch.float32)[:, None, None]  # (N, 1, 1)
    scale = L / out_len
    support = torch.where(scale >= 1, support0 * scale, torch.full_like(scale, support0))
    invscale = torch.where(scale >= 1, 1.0 / scale, torch.ones_like(scale))
    i = torch.arange(out_len, dtype=torch.float32, device=lengths.device)[None, :, None]
    center = scale * (i + 0.5)  # (N, O, 1)
    lo = torch.trunc(center - support + 0.5).clamp(min=0)
    hi = torch.minimum(torch.trunc(center + support + 0.5), L)
    j = torch.arange(in_len, dtype=torch.float32, device=lengths.device)[None, None, :]  # (1, 1, I)
    w = torch.where((j >= lo) & (j < hi), _filter((j - center + 0.5) * invscale, interpolation), 0.0)
    return w / w.sum(dim=-1, keepdim=True)  # (N, O, I)


def resized_crops(
    images: Sequence[torch.Tensor],
    boxes: torch.Tensor,
    size: tuple[int, int],
    interpolation: str = "bicubic",
    antialias: bool = True,
    method: str = "auto",
    max_pixels: int = 1 << 26,
) -> torch.Tensor:
    """Crop ``boxes[i]`` (top, left, h, w) of each (C, H, W) image and resize it to ``size``.

    uint8 inputs are scaled to [0, 1]; the result ``(N, C, *size)`` float32 is clamped to [0, 1]
    (bicubic overshoots; the uint8 CPU pipeline clamps too).

    ``method="matmul"`` (antialiased): the crops are copied into zero-padded batches (one copy
    per image, grouped by size so that a batch holds at most ``max_pixels`` padded pixels) and
    resampled with two batched matrix products by the separable antialiasing weights
    (:func:`resample_weights`) — a handful of kernels per batch instead of several per image,
    the same result as ``F.interpolate(antialias=True)`` up to float rounding. It spends more
    arithmetic (the padded crop times the weights), which a GPU has to spare and a CPU has not:
    on the CPU it was 8× slower than ``"interpolate"`` (64 crops of 375×500 images → 224²).
    ``method="interpolate"``: ``F.interpolate`` per image (also the path for ``antialias=False``).
    ``"auto"``: matmul on CUDA, interpolate elsewhere (``benchmarks/gpu_datapath.py`` measures
    both on the GPU).
    """
    if interpolation not in ("bicubic", "bilinear"):
        raise ValueError(f"interpolation must be 'bicubic' or 'bilinear', got {interpolation!r}")
    if method not in ("auto", "matmul", "interpolate"):
        raise ValueError(f"method must be 'auto', 'matmul' or 'interpolate', got {method!r}")
    if len(images) != boxes.shape[0]:
        raise ValueError(f"{len(images)} images but {boxes.shape[0]} crop boxes")
    if len(images) == 0:
        raise ValueError("no images to crop")
    rows = boxes.tolist()
    if method == "auto":
        method = "matmul" if images[0].device.type == "cuda" else "interpolate"
    if method == "interpolate" or not antialias:
        out = []
        for img, (top, left, h, w) in zip(images, rows, strict=True):
            crop = img[:, top : top + h, left : left + w]  # (C, h, w) view
            crop = crop.float().div_(255.0) if crop.dtype == torch.uint8 else crop.float()
            out.append(
                F.interpolate(crop[None], size=size, mode=interpolation, align_corners=False, antialias=antialias)
            )
        return torch.cat(out, dim=0).clamp_(0.0, 1.0)  # (N, C, H, W)

    if len({img.dtype for img in images}) != 1:
        raise ValueError("images in one batch must share a dtype (uint8 from decode_jpeg, or float)")
    device, C = images[0].device, images[0].shape[0]
    oh, ow = size
    result = torch.empty(len(images), C, oh, ow, device=device)
    order = sorted(range(len(images)), key=lambda n: rows[n][2] * rows[n][3])
    start = 0
    while start < len(order):  # grow a group while its padded size stays within max_pixels
        stop, hmax, wmax = start + 1, rows[order[start]][2], rows[order[start]][3]
        while stop < len(order):
            h, w = max(hmax, rows[order[stop]][2]), max(wmax, rows[order[stop]][3])
            if (stop - start + 1) * h * w > max_pixels:
                break
            hmax, wmax, stop = h, w, stop + 1
        group = order[start:stop]
        buf = torch.zeros(len(group), C, hmax, wmax, device=device)
        for k, n in enumerate(group):
            top, left, h, w = rows[n]
            buf[k, :, :h, :w].copy_(images[n][:, top : top + h, left : left + w])  # uint8 → float here
        hs = torch.tensor([rows[n][2] for n in group], device=device)
        ws = torch.tensor([rows[n][3] for n in group], device=device)
        wh = resample_weights(hs, oh, hmax, interpolation)  # (G, oh, hmax)
        ww = resample_weights(ws, ow, wmax, interpolation)  # (G, ow, wmax)
        out = wh[:, None] @ buf @ ww.transpose(1, 2)[:, None]  # (G, C, oh, ow)
        if images[group[0]].dtype == torch.uint8:
            out = out / 255.0
        result[torch.tensor(group, device=device)] = out
        start = stop
    return result.clamp_(0.0, 1.0)


def flip_where(x: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
    """Flip ``x`` (N, C, H, W) left-right where ``flags`` (N,) bool is True."""
    return torch.where(flags.to(x.device)[:, None, None, None], x.flip(-1), x)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel for ``x`` (N, C, H, W)."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


class DeviceAugment:
    """The MAE image recipe on decoded device tensors.

    ``augment=True``: RandomResizedCrop(``img_size``, ``scale``, ``ratio``, bicubic, antialias),
    horizontal flip with probability ``hflip``, normalization. ``augment=False``: center crop
    (``crop_pct``) and normalization; ``method``: see :func:`resized_crops`. ``__call__(images:
    list of (C, H, W) uint8 or float tensors, generator=None, draws=None) -> (N, C, S, S)``
    float32 on the images' device. The random parameters are ``draws`` (N, :attr:`num_draws`)
    uniform numbers when given (drawn per sample, e.g. in the loader workers), else drawn from
    ``generator`` (a CPU generator), so a seed reproduces the batch.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        augment: bool = True,
        scale: tuple[float, float] = (0.2, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        hflip: float = 0.5,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        interpolation: str = "bicubic",
        crop_pct: float = 0.875,
        method: str = "auto",
    ):
        self.size = (img_size, img_size) if isinstance(img_size, int) else (int(img_size[0]), int(img_size[1]))
        if min(self.size) <= 0:
            raise ValueError(f"img_size must be positive, got {img_size}")
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} channels but std has {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        if not 0.0 <= hflip <= 1.0:
            raise ValueError(f"hflip must be a probability in [0, 1], got {hflip}")
        self.augment = augment
        self.scale, self.ratio, self.hflip = tuple(scale), tuple(ratio), float(hflip)
        self.mean, self.std = tuple(mean), tuple(std)
        self.interpolation, self.crop_pct, self.method = interpolation, crop_pct, method

    @property
    def num_draws(self) -> int:
        """Uniform numbers per image: the crop's areas, ratios and offsets, then the flip."""
        return 2 * CROP_ATTEMPTS + 3 if self.augment else 0

    def boxes(
        self, sizes: Sequence[tuple[int, int]], generator: torch.Generator | None = None,
        uniforms: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        if self.augment:
            return sample_crop_boxes(sizes, self.scale, self.ratio, generator, uniforms=uniforms)
        return center_crop_boxes(sizes, self.crop_pct, square=self.size[0] == self.size[1])

    def __call__(
        self, images: Sequence[torch.Tensor], generator: torch.Generator | None = None,
        draws: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        if len(images) == 0:
            raise ValueError("no images to augment")
        channels = {int(img.shape[0]) for img in images}
        if channels != {len(self.mean)}:
            raise ValueError(f"images have {sorted(channels)} channels, mean/std have {len(self.mean)}")
        if draws is not None and tuple(draws.shape) != (len(images), self.num_draws):
            raise ValueError(f"draws must be ({len(images)}, {self.num_draws}), got {tuple(draws.shape)}")
        sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        crop_draws = None if draws is None or not self.augment else draws[:, :-1]
        boxes = self.boxes(sizes, generator, crop_draws)
        x = resized_crops(images, boxes, self.size, self.interpolation, method=self.method)
        if self.augment and self.hflip > 0:
            u = draws[:, -1] if draws is not None else torch.rand(len(images), generator=generator)
            x = flip_where(x, u < self.hflip)
        return normalize(x, self.mean, self.std)  # (N, C, S, S)


# ---------------------------------------------------------------------------------------------
# the dataset's device pipeline


class DecodeAugment:
    """``to_device`` of the image device pipeline: :func:`decode_batch`, then ``augment`` with
    the draws the workers made. ``on_bad(path, reason)`` hears of files nothing can decode."""

    def __init__(self, augment: DeviceAugment, on_bad: Callable[[str, str], None] | None = None):
        self.augment = augment
        self.channels = len(augment.mean)
        self.on_bad = on_bad

    def __call__(self, batch: EncodedBatch, device: torch.device) -> torch.Tensor:
        images = decode_batch(batch.data, device, self.channels, batch.paths, self.on_bad)
        return self.augment(images, draws=batch.draws)  # (B, C, S, S)


def folder_pipeline(
    samples: Sequence[tuple[str | os.PathLike, int]],
    augment: DeviceAugment,
    on_bad: Callable[[str, str], None] | None = None,
) -> DevicePipeline:
    """The device pipeline over image files: workers read bytes and draw the augmentation
    parameters (:class:`EncodedImageDataset`), the device decodes and augments
    (:class:`DecodeAugment`)."""
    items = EncodedImageDataset(samples, num_draws=augment.num_draws, channels=len(augment.mean))
    return DevicePipeline(items=items, to_device=DecodeAugment(augment, on_bad), collate=collate_encoded,
                          name="JPEG decode + augmentation on the device")  # fmt: skip
