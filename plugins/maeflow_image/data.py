"""Image datasets and transforms.

- ``image_folder``: any folder of jpg/jpeg/png/bmp/gif/webp/tif(f) files read with PIL, labels
  from class subfolders when present, ``root/train`` and ``root/test`` (or ``root/val``)
  used for the splits when they exist. Corrupt files are skipped and recorded in
  ``dataset.skipped`` (or raise with ``strict=True``); see :mod:`maeflow.data`.
- ``digits``: scikit-learn's handwritten digits (1,797 labeled 8×8 grey images that ship inside
  scikit-learn: nothing is downloaded), upsampled to ``img_size`` with a fixed stratified 80/20
  train/test split (1,438 / 359 images with ``test_fraction=0.2``).

Train transforms follow the MAE pretraining recipe: RandomResizedCrop(scale 0.2–1.0, bicubic),
horizontal flip, normalization (ImageNet mean/std unless given). Evaluation transforms resize
the short side to ``img_size / crop_pct`` and center-crop. Items are ``(image (C, H, W) float,
label)``; ``dataset.display_options`` holds the mean/std the visualizer needs to undo the
normalization.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision import transforms as T

from maeflow.data import FolderDataset, check_split, scan_folder, split_folder, stratified_split
from maeflow.data.records import Record, SampleCodec
from maeflow_image.tokenizer import to_hw

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# one grey channel: the luminance-weighted ImageNet statistics
IMAGENET_GREY_MEAN = (0.449,)
IMAGENET_GREY_STD = (0.226,)
# pixel statistics of the digits training split (seed 0) in [0, 1] after bicubic upsampling to 32²
DIGITS_MEAN = 0.3124
DIGITS_STD = 0.3561
DIGITS_NUM_CLASSES = 10

_INTERPOLATION = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}


def _interpolation(name: str) -> T.InterpolationMode:
    if name not in _INTERPOLATION:
        raise ValueError(f"interpolation must be one of {', '.join(_INTERPOLATION)}, got {name!r}")
    return _INTERPOLATION[name]


def _stats(
    mean: Sequence[float] | float | None, std: Sequence[float] | float | None, in_chans: int,
    default: tuple[Sequence[float], Sequence[float]],
) -> tuple[tuple[float, ...], tuple[float, ...]]:  # fmt: skip
    """Per-channel mean/std: given ones (a scalar is repeated), else ``default``."""
    mean = default[0] if mean is None else mean
    std = default[1] if std is None else std
    out = []
    for name, v in (("mean", mean), ("std", std)):
        v = (float(v),) * in_chans if isinstance(v, (int, float)) else tuple(float(x) for x in v)
        if len(v) == 1 and in_chans > 1:
            v = v * in_chans
        if len(v) != in_chans:
            raise ValueError(f"{name} has {len(v)} values but the images have {in_chans} channels")
        out.append(v)
    if any(s <= 0 for s in out[1]):
        raise ValueError(f"std must be positive, got {out[1]}")
    return out[0], out[1]


def _default_stats(in_chans: int) -> tuple[Sequence[float], Sequence[float]]:
    return (IMAGENET_MEAN, IMAGENET_STD) if in_chans == 3 else (IMAGENET_GREY_MEAN, IMAGENET_GREY_STD)


def _check_in_chans(in_chans: int) -> int:
    if in_chans not in (1, 3):
        raise ValueError(f"in_chans must be 1 (grey) or 3 (RGB), got {in_chans}")
    return in_chans


def _check_scale(scale: Sequence[float]) -> tuple[float, float]:
    lo, hi = (float(s) for s in scale)
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"scale must be (low, high) with 0 < low <= high <= 1, got {tuple(scale)}")
    return lo, hi


def image_transforms(
    img_size: int | Sequence[int],
    train: bool,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    scale: Sequence[float] = (0.2, 1.0),
    hflip: bool = True,
    interpolation: str = "bicubic",
    crop_pct: float = 0.875,
) -> T.Compose:
    """PIL image → normalized (C, H, W) tensor.

    ``train``: RandomResizedCrop(``img_size``, ``scale``) + horizontal flip (``hflip``), the MAE
    pretraining augmentation. Otherwise: resize the short side to ``img_size / crop_pct``, then
    center-crop ``img_size`` (``crop_pct=1`` resizes straight to the crop).
    """
    size = to_hw(img_size)
    mode = _interpolation(interpolation)
    if train:
        steps = [T.RandomResizedCrop(size, scale=_check_scale(scale), interpolation=mode)]
        if hflip:
            steps.append(T.RandomHorizontalFlip())
    else:
        if not 0 < crop_pct <= 1:
            raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
        resize = tuple(int(round(s / crop_pct)) for s in size)
        steps = [T.Resize(resize[0] if size[0] == size[1] else resize, interpolation=mode), T.CenterCrop(size)]
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])


# --- image folders ---------------------------------------------------------------------------


def load_image(path: Path | BinaryIO, mode: str = "RGB"):
    """Decode a whole image file or file object (first frame of an animation) as a PIL image in ``mode``."""
    from PIL import Image

    with Image.open(path) as img:
        return img.convert(mode)  # convert() decodes everything, so a truncated file fails here


def check_image(path: Path | BinaryIO) -> None:
    """Cheap up-front check: PIL identifies the file and its structure is intact."""
    from PIL import Image

    with Image.open(path) as img:
        img.verify()


class ImageFolder(FolderDataset):
    """A :class:`~maeflow.data.FolderDataset` of images that remembers its recipe, so that it can
    offer the same transforms on the device (:meth:`device_pipeline`)."""

    def __init__(self, index, recipe: dict, **options):
        super().__init__(index, **options)
        self.recipe = dict(recipe)  # DeviceAugment's arguments, the CPU transform's settings
        self.display_options = {"mean": list(recipe["mean"]), "std": list(recipe["std"])}

    def device_pipeline(self, device: torch.device):
        """Workers read the files' bytes (and decode non-JPEGs with PIL); each batch is decoded
        with ``decode_jpeg`` on ``device`` and cropped, flipped and normalized there. A file
        that cannot be decoded is handled as on the CPU path: recorded in :attr:`skipped` with
        a warning (replaced by another image of its batch), or a ``ValueError`` when ``strict``."""
        from maeflow_image.gpu_data import DeviceAugment, folder_pipeline

        return folder_pipeline(self.samples, DeviceAugment(**self.recipe), on_bad=self.mark_bad)



def image_codec(
    split: str = "train",
    img_size: int | Sequence[int] = 224,
    in_chans: int = 3,
    augment: bool | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    scale: Sequence[float] = (0.2, 1.0),
    hflip: bool = True,
    interpolation: str = "bicubic",
    crop_pct: float = 0.875,
) -> SampleCodec:
    """How ``image_folder`` reads one image (a file or its bytes in a shard): PIL decode, then
    the split's transform; the options are ``image_folder``'s."""
    check_split(split)
    in_chans = _check_in_chans(in_chans)
    mean, std = _stats(mean, std, in_chans, _default_stats(in_chans))
    augment = split == "train" if augment is None else augment
    transform = image_transforms(img_size, augment, mean, std, scale, hflip, interpolation, crop_pct)
    recipe = dict(img_size=to_hw(img_size), augment=augment, scale=_check_scale(scale), hflip=0.5 if hflip else 0.0,
                  mean=mean, std=std, interpolation=interpolation, crop_pct=crop_pct)  # fmt: skip
    attrs = {"recipe": recipe, "display_options": {"mean": list(mean), "std": list(std)}}
    load = functools.partial(load_image, mode="RGB" if in_chans == 3 else "L")
    return SampleCodec(load=load, transform=transform, check=check_image, attrs=attrs)


def image_folder(
    split: str = "train",
    root: str | None = None,
    img_size: int | Sequence[int] = 224,
    in_chans: int = 3,
    augment: bool | None = None,
    strict: bool = False,
    labels: bool | None = None,
    recursive: bool = True,
    verify: bool | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    scale: Sequence[float] = (0.2, 1.0),
    hflip: bool = True,
    interpolation: str = "bicubic",
    crop_pct: float = 0.875,
) -> ImageFolder:
    """A folder of images (jpg/jpeg/png/bmp/gif/webp/tif(f), read with PIL) as normalized
    (``in_chans``, H, W) tensors. The dataset also offers the same recipe on the device
    (:meth:`ImageFolder.device_pipeline`: JPEG decode and augmentation on the GPU).

    Training items (``augment``) are MAE's RandomResizedCrop(``img_size``, ``scale``) + flip;
    evaluation items resize the short side to ``img_size / crop_pct`` and center-crop.

    :param root: the folder; the split reads ``root/<split>`` (``root/val`` also serves "test")
        when that folder exists, else ``root`` itself.
    :param img_size: the output height and width (an int: square); the model's when trained.
    :param in_chans: 3 (RGB) or 1 (grey); the model's when trained.
    :param augment: the training augmentation (default for "train"); otherwise the center crop.
    :param strict: raise ``ValueError`` naming an unreadable file instead of skipping it.
    :param labels: class subfolders (True), none (False: label -1) or auto (None: when ``root``
        holds subfolders and no files of its own).
    :param recursive: also read the files of nested folders (within each class folder).
    :param verify: check every file up front with PIL (None: for folders of up to 50,000 files).
    :param mean: per-channel normalization mean; default ImageNet's (its grey value for 1 channel).
    :param std: per-channel normalization std; default ImageNet's (its grey value for 1 channel).
    :param scale: the range of the crop's area, as a fraction of the image's (``augment``).
    :param hflip: flip half of the training crops horizontally.
    :param interpolation: the resampling of crops and resizes ("bicubic" or "bilinear").
    :param crop_pct: the evaluation crop's share of the resized short side (1: resize straight to
        the crop).
    """
    codec = image_codec(split, img_size, in_chans, augment, mean, std, scale, hflip, interpolation, crop_pct)
    folder = split_folder(root, split, aliases=("val",) if split == "test" else (), what="image_folder")
    index = scan_folder(folder, IMAGE_EXTENSIONS, labels=labels, recursive=recursive, what="image_folder")
    return ImageFolder(index, codec.attrs["recipe"], load=codec.load, transform=codec.transform, strict=strict,
                       check=codec.check, verify=verify, what=f"image_folder {folder}")  # fmt: skip


# --- scikit-learn digits ---------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)  # (1797, 8, 8) in [0, 1]


digits_split = stratified_split  # the split every digits-based dataset shares


class DigitsDataset(Dataset):
    """Upsampled scikit-learn digits. ``images`` (N, 1, H, W) in [0, 1] are computed once; each
    item is optionally augmented (``augment``), normalized and repeated to ``in_chans``."""

    num_classes = DIGITS_NUM_CLASSES

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, indices: np.ndarray, in_chans: int,
                 mean: tuple[float, ...], std: tuple[float, ...], augment: T.Compose | None):  # fmt: skip
        self.images = images
        self.labels = labels
        self.indices = indices  # positions in sklearn's 1,797 images
        self.in_chans = in_chans
        self.finish = DigitFinish(in_chans, mean, std, augment)
        self.display_options = {"mean": list(mean), "std": list(std)}
        self.skipped: list[tuple[str, str]] = []  # generated data: nothing can be unreadable

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def targets(self) -> list[int]:
        return self.labels.tolist()

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        return self.finish(self.images[idx]), int(self.labels[idx])

    def records(self) -> Iterator[Record]:
        """The upsampled, un-augmented digits as ``.npy`` (1, H, W) float32 records (for
        ``maeflow shard``; ``digits_codec`` reads them back and augments them as here)."""
        for i in range(len(self)):
            buf = io.BytesIO()
            np.save(buf, self.images[i].numpy())
            yield Record(f"digit_{int(self.indices[i]):04d}.npy", buf.getvalue(), int(self.labels[i]),
                         {"index": int(self.indices[i])})  # fmt: skip


class DigitFinish:
    """(1, H, W) digit in [0, 1] → optional augmentation, ``in_chans`` channels, normalized."""

    def __init__(self, in_chans: int, mean: tuple[float, ...], std: tuple[float, ...], augment: T.Compose | None):
        self.in_chans = in_chans
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)
        self.augment = augment

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if self.augment is not None:
            img = self.augment(img).clamp(0, 1)  # bicubic resampling overshoots [0, 1]
        img = img.expand(self.in_chans, -1, -1)
        return (img - self.mean) / self.std


def load_npy(source) -> torch.Tensor:
    """A ``.npy`` array (path or file object) as a tensor."""
    return torch.from_numpy(np.load(source, allow_pickle=False))


def digits(
    split: str = "train",
    img_size: int | Sequence[int] = 32,
    in_chans: int = 3,
    augment: bool | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    interpolation: str = "bicubic",
    scale: Sequence[float] = (0.6, 1.0),
    hflip: bool = False,
    mean: Sequence[float] | float | None = None,
    std: Sequence[float] | float | None = None,
) -> DigitsDataset:
    """scikit-learn's 1,797 handwritten 8×8 digits (they ship inside scikit-learn: nothing is
    downloaded) as (``in_chans``, ``img_size``) images, labels 0–9.

    The split is fixed and stratified (1,438 train / 359 test by default). The 8×8 images are
    upsampled once with ``interpolation``. Train-time augmentation is a mild RandomResizedCrop
    (a digit must stay recognizable in the crop) and no horizontal flip by default (a mirrored
    2, 3, 7 is not a digit).

    :param img_size: the output height and width (an int: square); the model's when trained.
    :param in_chans: channels; the grey image is repeated (the model's when trained).
    :param augment: the training crop (default for "train"); otherwise the whole upsampled digit.
    :param seed: fixes the train/test split.
    :param test_fraction: the share of each class that goes to "test".
    :param interpolation: the upsampling from 8×8 ("bicubic" or "bilinear").
    :param scale: the range of the training crop's area, as a fraction of the image's.
    :param hflip: flip half of the training crops horizontally.
    :param mean: normalization mean (one value or one per channel); default the digits' own
        pixel mean, ``DIGITS_MEAN`` (0.3124).
    :param std: normalization std (one value or one per channel); default the digits' own,
        ``DIGITS_STD`` (0.3561).
    """
    check_split(split)
    in_chans = _check_in_chans(in_chans)
    size = to_hw(img_size)
    mode = _interpolation(interpolation)
    mean, std = _stats(mean, std, in_chans, ((DIGITS_MEAN,), (DIGITS_STD,)))
    images, labels = _digits_arrays()
    train_idx, test_idx = digits_split(labels, test_fraction, seed)
    idx = train_idx if split == "train" else test_idx
    x = torch.from_numpy(images[idx]).unsqueeze(1)  # (N, 1, 8, 8)
    x = F.interpolate(x, size=size, mode=interpolation, align_corners=False).clamp_(0, 1)  # (N, 1, H, W)
    aug = _digit_augment(split, size, augment, scale, hflip, mode)
    return DigitsDataset(x, torch.from_numpy(labels[idx]), idx, in_chans, mean, std, aug)


def _digit_augment(split: str, size: tuple[int, int], augment: bool | None, scale, hflip: bool,
                   mode: T.InterpolationMode) -> T.Compose | None:  # fmt: skip
    if not (split == "train" if augment is None else augment):
        return None
    steps = [T.RandomResizedCrop(size, scale=_check_scale(scale), interpolation=mode, antialias=True)]
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose(steps)


def digits_codec(
    split: str = "train",
    img_size: int | Sequence[int] = 32,
    in_chans: int = 3,
    augment: bool | None = None,
    interpolation: str = "bicubic",
    scale: Sequence[float] = (0.6, 1.0),
    hflip: bool = False,
    mean: Sequence[float] | float | None = None,
    std: Sequence[float] | float | None = None,
) -> SampleCodec:
    """How ``digits`` records (upsampled digits stored as ``.npy``, see
    :meth:`DigitsDataset.records`) become items, exactly as ``digits`` makes them; the
    options are ``digits``'. The stored images keep the ``img_size`` they were written at."""
    check_split(split)
    in_chans = _check_in_chans(in_chans)
    mean, std = _stats(mean, std, in_chans, ((DIGITS_MEAN,), (DIGITS_STD,)))
    aug = _digit_augment(split, to_hw(img_size), augment, scale, hflip, _interpolation(interpolation))
    return SampleCodec(load=load_npy, transform=DigitFinish(in_chans, mean, std, aug),
                       attrs={"display_options": {"mean": list(mean), "std": list(std)}})  # fmt: skip
