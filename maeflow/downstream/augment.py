"""Fine-tuning augmentation, from timm and torchaudio (no local copies):

- per item, on top of the dataset's own augmentation (crop/flip, clip window, point scaling):
  timm's RandAugment (``rand_augment_transform``) on the de-normalized image, timm's
  ``RandomErasing`` (pixel mode) on the normalized one, torchaudio's SpecAugment
  (``FrequencyMasking`` / ``TimeMasking``) on ``(1, T, F)`` spectrograms;
- per batch: timm's ``Mixup`` (mixup and cutmix, with label smoothing into soft targets).

Per-item randomness comes from the loader's per-sample seeds (:class:`maeflow.data.SeededItems`),
batch randomness from :func:`seeded` with the step's seed: a run repeats exactly across resumes.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from maeflow.downstream.config import AugmentConfig


class AugmentedItems(Dataset):
    """``dataset`` with ``fn(inputs) -> inputs`` applied to every item's inputs (labels kept)."""

    def __init__(self, dataset: Dataset, fn: Callable[[torch.Tensor], torch.Tensor]):
        self.dataset, self.fn = dataset, fn
        self.num_classes = getattr(dataset, "num_classes", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> tuple[Any, Any]:
        inputs, label = self.dataset[idx][:2]
        return self.fn(torch.as_tensor(inputs)), label


class ImageRandAugment:
    """timm RandAugment on a normalized (C, H, W) image: undo ``mean``/``std``, to 8-bit PIL (grey
    images through RGB), augment, back to a normalized tensor. The dataset's crop and flip ran
    before, as in timm's ``create_transform`` (the 8-bit round trip is the only difference).
    A (C, T, H, W) clip gets the same ops and magnitudes on every frame (VideoMAE's way)."""

    def __init__(self, config: str, mean: Sequence[float], std: Sequence[float], img_size: int):
        from timm.data import rand_augment_transform

        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        fill = tuple(round(255 * float(m)) for m in (list(mean) * 3)[:3]) if len(mean) == 1 else \
            tuple(round(255 * float(m)) for m in mean)  # fmt: skip
        self.op = rand_augment_transform(config, {"translate_const": int(img_size * 0.45), "img_mean": fill})
        for op in getattr(self.op, "ops", []):
            if op.name == "PosterizeIncreasing":
                # at magnitude 10 timm asks Pillow to keep 0 bits, which Pillow >= 11 refuses: stop
                # just short of it (1 bit, the darkest posterize that still exists)
                op.magnitude_max = min(op.magnitude_max or 10.0, 9.9)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:  # (C, T, H, W): replay the same draws for every frame
            states = random.getstate(), np.random.get_state()
            frames = []
            for t in range(x.shape[1]):
                random.setstate(states[0])
                np.random.set_state(states[1])
                frames.append(self._image(x[:, t]))
            return torch.stack(frames, dim=1)
        return self._image(x)

    def _image(self, x: torch.Tensor) -> torch.Tensor:
        from PIL import Image

        c = x.shape[0]
        img = ((x * self.std + self.mean).clamp(0, 1) * 255).round().to(torch.uint8)  # (C, H, W)
        arr = img.permute(1, 2, 0).numpy()
        pil = Image.fromarray(arr[..., 0], "L").convert("RGB") if c == 1 else Image.fromarray(arr, "RGB")
        out = self.op(pil)
        out = out.convert("L") if c == 1 else out
        t = torch.from_numpy(np.asarray(out, dtype=np.float32).copy()) / 255.0
        t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
        return (t - self.mean) / self.std


class ClipErasing:
    """timm RandomErasing for a (C, H, W) image, or per frame of a (C, T, H, W) clip (VideoMAE
    erases the frames of a clip independently)."""

    def __init__(self, probability: float):
        from timm.data.random_erasing import RandomErasing

        self.op = RandomErasing(probability, mode="pixel", device="cpu")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            return self.op(x.transpose(0, 1).contiguous()).transpose(0, 1).contiguous()  # (T, C, H, W) as a batch
        return self.op(x)


class SpecAugment:
    """torchaudio frequency and time masking on a (1, T, F) spectrogram (masked to 0, the
    normalized spectrogram's mean), as Audio-MAE fine-tunes."""

    def __init__(self, freq_mask: int, time_mask: int):
        from maeflow._optional import import_optional

        TA = import_optional("torchaudio.transforms", install="maeflow[audio]", needed_for="SpecAugment")

        self.freq = TA.FrequencyMasking(freq_mask) if freq_mask else None
        self.time = TA.TimeMasking(time_mask) if time_mask else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = x.transpose(-1, -2)  # (1, F, T): torchaudio's (..., freq, time)
        if self.freq is not None:
            y = self.freq(y)
        if self.time is not None:
            y = self.time(y)
        return y.transpose(-1, -2).contiguous()


class Chain:
    def __init__(self, fns: list[Callable[[torch.Tensor], torch.Tensor]]):
        self.fns = fns

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for fn in self.fns:
            x = fn(x)
        return x


def item_augmentation(cfg: AugmentConfig, dataset: Dataset, sample: torch.Tensor) -> Callable | None:
    """The per-item chain the config asks for (None: nothing to add). RandAugment needs the
    dataset's normalization (``display_options`` mean/std) and an image-shaped item."""
    fns: list[Callable] = []
    if cfg.rand_augment:
        opts = getattr(dataset, "display_options", None) or {}
        if sample.ndim not in (3, 4) or "mean" not in opts:
            raise ValueError("augment.rand_augment needs image (C, H, W) or clip (C, T, H, W) items from a dataset "
                             "with display_options mean/std (digits, image_folder, video datasets)")  # fmt: skip
        fns.append(ImageRandAugment(cfg.rand_augment, opts["mean"], opts["std"], int(max(sample.shape[-2:]))))
    if cfg.random_erasing:
        if sample.ndim not in (3, 4):
            raise ValueError(f"augment.random_erasing needs image or clip items, got {tuple(sample.shape)}")
        fns.append(ClipErasing(cfg.random_erasing))
    if cfg.freq_mask or cfg.time_mask:
        if sample.ndim != 3:
            raise ValueError(f"augment.freq_mask/time_mask need (1, T, F) spectrograms, got {tuple(sample.shape)}")
        fns.append(SpecAugment(cfg.freq_mask, cfg.time_mask))
    return Chain(fns) if fns else None


def batch_mixer(cfg: AugmentConfig, num_classes: int, label_smoothing: float):
    """timm ``Mixup`` (None when mixup and cutmix are both off): ``mixer(x, y) -> (x, soft targets)``."""
    if not (cfg.mixup or cfg.cutmix):
        return None
    from timm.data import Mixup

    return Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, prob=cfg.mixup_prob, switch_prob=cfg.switch_prob,
                 mode="batch", label_smoothing=label_smoothing, num_classes=num_classes)  # fmt: skip


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """numpy, ``random`` and torch (CPU, and ``device`` when it is CUDA) seeded with ``seed``
    inside, restored afterwards (timm's Mixup draws from numpy, stochastic depth from torch)."""
    np_state, py_state = np.random.get_state(), random.getstate()
    cuda = [device.index or 0] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        np.random.seed(seed % (1 << 32))
        random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
