"""JPEG decoding and MAE augmentation on the device, one batch at a time.

CPU workers cannot feed a ViT-B MAE step on a current GPU (PIL decode + RandomResizedCrop
reaches about a third of the model's rate with 15 workers, see ``shared/PERFORMANCE.md``).
This path moves the expensive parts next to the model:

1. DataLoader workers only read the file bytes (:class:`EncodedImageDataset`, items
   ``(bytes (n,) uint8, label)``, collated into a list by :func:`collate_encoded`);
2. :func:`decode_images` decodes the whole batch with ``torchvision.io.decode_jpeg(list,
   device=...)`` (nvJPEG on CUDA; the same call runs on the CPU, which the tests use);
3. :class:`DeviceAugment` applies the MAE recipe to the decoded tensors — RandomResizedCrop
   (scale 0.2–1, ratio 3/4–4/3, bicubic with antialias), horizontal flip, normalization —
   with crop boxes sampled exactly as torchvision's ``RandomResizedCrop.get_params`` does
   (:func:`sample_crop_boxes`, vectorized, on the host so no device sync is needed), or the
   evaluation crop (short side to ``img_size / crop_pct``, center crop) when ``augment=False``.
   On CUDA the crops of a batch are resampled together by two batched matrix products with
   the antialiasing weights of ``F.interpolate(antialias=True)`` (:func:`resized_crops`): a few
   kernels per batch rather than several per image.

:class:`DeviceImageLoader` chains the three: ``for images, labels in loader`` gives
``(B, C, S, S)`` float tensors on the device. Where no GPU is present the usual CPU-worker
datasets stay the default; this path is chosen explicitly (e.g. ``device="cuda"``).

torchvision 0.29 marks ``torchvision.io``'s codecs deprecated in favour of TorchCodec (its
decoders take the same batched-on-device approach); they work unchanged.

Value semantics: resampling runs in float32 on [0, 1] pixels and the result is clamped to
[0, 1] before normalization (the CPU pipeline resamples uint8 and so clamps and rounds; the
rounding, at most 1/510, is not reproduced).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
JPEG_EXTENSIONS = (".jpg", ".jpeg")


# ---------------------------------------------------------------------------------------------
# reading bytes in workers


class EncodedImageDataset(Dataset):
    """Items ``(file bytes (n,) uint8 tensor, label)`` read with ``torchvision.io.read_file``.

    ``samples``: ``(path, label)`` pairs, e.g. ``maeflow.data.scan_folder(root, (".jpg",
    ".jpeg")).samples``. Decoding happens later, batched, on the device.
    """

    def __init__(self, samples: Sequence[tuple[str | os.PathLike, int]]):
        if len(samples) == 0:
            raise ValueError("EncodedImageDataset needs at least one file")
        self.samples = [(Path(p), int(label)) for p, label in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        from torchvision.io import read_file

        path, label = self.samples[idx]
        return read_file(str(path)), label


def collate_encoded(batch: Sequence[tuple[torch.Tensor, int]]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Keep the variable-length byte tensors as a list; labels become a (B,) int64 tensor."""
    return [b for b, _ in batch], torch.tensor([label for _, label in batch], dtype=torch.long)


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


# ---------------------------------------------------------------------------------------------
# crop boxes


def sample_crop_boxes(
    sizes: Sequence[tuple[int, int]],
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
    attempts: int = 10,
) -> torch.Tensor:
    """RandomResizedCrop boxes ``(N, 4)`` int64 rows ``(top, left, height, width)`` for images
    of ``sizes`` [(H, W), ...], sampled as ``torchvision.transforms.RandomResizedCrop.get_params``:
    up to ``attempts`` tries of area ∈ scale·H·W (uniform) and log-uniform aspect ratio, the
    first that fits wins; otherwise the central crop with the ratio clamped into ``ratio``.
    Sampling runs on the host (CPU generator), vectorized over images and attempts.
    """
    if not 0 < scale[0] <= scale[1]:
        raise ValueError(f"scale must satisfy 0 < min <= max, got {scale}")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio}")
    hw = torch.tensor([list(s) for s in sizes], dtype=torch.float64).reshape(-1, 2)  # (N, 2)
    n = hw.shape[0]
    H, W = hw[:, 0:1], hw[:, 1:2]  # (N, 1)
    area = H * W
    u_area = torch.rand(n, attempts, generator=generator, dtype=torch.float64)
    u_ratio = torch.rand(n, attempts, generator=generator, dtype=torch.float64)
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
    u_i = torch.rand(n, generator=generator, dtype=torch.float64)
    u_j = torch.rand(n, generator=generator, dtype=torch.float64)
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


def center_crop_boxes(sizes: Sequence[tuple[int, int]], crop_pct: float = 0.875) -> torch.Tensor:
    """Evaluation crop as ``(N, 4)`` boxes: the centered square of side ``crop_pct·min(H, W)``
    (= resize the short side to ``S / crop_pct``, then center-crop ``S``)."""
    if not 0 < crop_pct <= 1:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    rows = []
    for H, W in sizes:
        side = max(1, int(round(min(H, W) * crop_pct)))
        rows.append([(H - side) // 2, (W - side) // 2, side, side])
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
    list of (C, H, W) uint8 or float tensors, generator=None) -> (N, C, S, S)`` float32 on the
    images' device; random draws come from ``generator`` (a CPU generator), so a seed
    reproduces the batch.
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

    def boxes(self, sizes: Sequence[tuple[int, int]], generator: torch.Generator | None = None) -> torch.Tensor:
        if self.augment:
            return sample_crop_boxes(sizes, self.scale, self.ratio, generator)
        return center_crop_boxes(sizes, self.crop_pct)

    def __call__(self, images: Sequence[torch.Tensor], generator: torch.Generator | None = None) -> torch.Tensor:
        if len(images) == 0:
            raise ValueError("no images to augment")
        channels = {int(img.shape[0]) for img in images}
        if channels != {len(self.mean)}:
            raise ValueError(f"images have {sorted(channels)} channels, mean/std have {len(self.mean)}")
        sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        x = resized_crops(images, self.boxes(sizes, generator), self.size, self.interpolation, method=self.method)
        if self.augment and self.hflip > 0:
            flags = torch.rand(len(images), generator=generator) < self.hflip
            x = flip_where(x, flags)
        return normalize(x, self.mean, self.std)  # (N, C, S, S)


class DeviceImageLoader:
    """Batches of augmented images on ``device`` from a loader of encoded bytes.

    ``loader`` yields ``(list of byte tensors, labels)`` (a ``DataLoader`` over
    :class:`EncodedImageDataset` with ``collate_fn=collate_encoded``); each batch is decoded
    on ``device`` and augmented there. Iterating gives ``(images (B, C, S, S) float32, labels
    (B,))`` on ``device``. ``seed`` fixes the augmentation draws (per batch, in order).

    On CUDA (``prefetch=True``) the next batch is decoded and augmented on a side stream while
    the caller's work on the current batch runs, so the two overlap on the device.
    """

    def __init__(
        self,
        loader,
        augment: DeviceAugment,
        device: str | torch.device = "cuda",
        seed: int | None = None,
        prefetch: bool = True,
    ):
        self.loader = loader
        self.augment = augment
        self.device = torch.device(device)
        self.prefetch = prefetch and self.device.type == "cuda"
        self.generator = torch.Generator()
        self.generator.manual_seed(torch.initial_seed() if seed is None else seed)

    def __len__(self) -> int:
        return len(self.loader)

    def _prepare(self, data, labels) -> tuple[torch.Tensor, torch.Tensor]:
        images = decode_images(data, self.device, channels=len(self.augment.mean))
        return self.augment(images, generator=self.generator), labels.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self.prefetch:
            for data, labels in self.loader:
                yield self._prepare(data, labels)
            return
        side = torch.cuda.Stream(self.device)
        pending = None
        for data, labels in self.loader:
            with torch.cuda.stream(side):
                ready = self._prepare(data, labels)
            if pending is not None:
                yield pending
            pending = ready
            torch.cuda.current_stream(self.device).wait_stream(side)
            for t in pending:  # the tensors were made on the side stream but are used on this one
                t.record_stream(torch.cuda.current_stream(self.device))
        if pending is not None:
            yield pending


def device_image_loader(
    samples: Sequence[tuple[str | os.PathLike, int]],
    batch_size: int,
    device: str | torch.device = "cuda",
    num_workers: int = 8,
    shuffle: bool = True,
    seed: int | None = None,
    drop_last: bool = True,
    prefetch: bool = True,
    **augment_options,
) -> DeviceImageLoader:
    """Bytes read in ``num_workers`` DataLoader workers, decoded and augmented on ``device``.

    ``augment_options`` go to :class:`DeviceAugment` (``img_size``, ``augment``, ``scale``,
    ``hflip``, ``mean``, ``std``, ...).
    """
    from maeflow.data.loader import build_dataloader

    loader = build_dataloader(
        EncodedImageDataset(samples), batch_size, shuffle=shuffle, num_workers=num_workers, seed=seed,
        drop_last=drop_last, collate_fn=collate_encoded, pin_memory=False,
    )  # fmt: skip
    return DeviceImageLoader(loader, DeviceAugment(**augment_options), device=device, seed=seed, prefetch=prefetch)
