"""Folder datasets for any modality: scan a tree of files, optionally take labels from class
subfolders, and load items robustly (a corrupt file is skipped and recorded, or raises when
``strict``).

A modality plugin writes only "how to read one file"::

    from maeflow.data import FolderDataset, scan_folder

    index = scan_folder(root, extensions=(".wav", ".flac"))          # FolderIndex
    ds = FolderDataset(index, load=read_waveform, strict=False)      # items (tensor, label)

``load(path) -> Tensor`` raises on a bad file (any exception); ``check(path)`` (optional) is a
cheaper test run for every file up front (``verify``) so that bad files are found and counted
before training starts rather than when a worker first touches them.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset

log = logging.getLogger(__name__)

# folders with at most this many files are verified up front when ``verify`` is left to "auto";
# larger ones (ImageNet: 1.28M files) would spend minutes before the first step
AUTO_VERIFY_MAX_FILES = 50_000


@dataclass
class FolderIndex:
    """The files found under ``root``: ``samples`` is a list of ``(path, label)`` sorted by
    relative path; ``label`` is the index of its class folder in ``classes`` (sorted names), or
    -1 when the folder has no class subfolders (``classes == []``)."""

    root: Path
    samples: list[tuple[Path, int]]
    classes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int | None:
        return len(self.classes) or None

    def __len__(self) -> int:
        return len(self.samples)


def normalize_extensions(extensions: Iterable[str]) -> tuple[str, ...]:
    """``["JPG", ".png"]`` → ``(".jpg", ".png")``: matching is case-insensitive."""
    out = tuple(sorted({("." + e.lstrip(".")).lower() for e in extensions}))
    if not out:
        raise ValueError("extensions must name at least one file extension")
    return out


def check_root(root: str | os.PathLike | None, what: str = "dataset") -> Path:
    """``root`` as a Path; a ``ValueError`` naming it when it is missing or not a folder."""
    if root is None or str(root) == "":
        raise ValueError(f"the {what} needs a folder: set its 'root' option, e.g. data.options.root=/path/to/files "
                         "(eval.options.root for the evaluation dataset)")  # fmt: skip
    path = Path(root).expanduser()
    if not path.exists():
        raise ValueError(f"{what} root does not exist: {path}")
    if not path.is_dir():
        raise ValueError(f"{what} root is not a folder: {path}")
    return path


def _files(folder: Path, extensions: tuple[str, ...], recursive: bool) -> list[Path]:
    """Matching files under ``folder``, hidden files and folders skipped, sorted."""
    found = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            found += [Path(dirpath) / f for f in filenames if not f.startswith(".") and f.lower().endswith(extensions)]
    else:
        found = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                 and p.name.lower().endswith(extensions)]  # fmt: skip
    return sorted(found)


def scan_folder(
    root: str | os.PathLike | None,
    extensions: Iterable[str],
    labels: bool | None = None,
    recursive: bool = True,
    what: str = "dataset",
) -> FolderIndex:
    """Find the files of a dataset folder.

    ``labels=True``: every immediate subfolder of ``root`` is a class (``root/cat/x.jpg`` →
    class "cat"); classes are sorted by name, so the class index is the same on every machine;
    files directly in ``root`` are ignored (with a warning). ``labels=False``: every file is
    unlabeled (label -1). ``labels=None`` (auto): class folders when ``root`` holds subfolders
    and no matching files of its own. ``recursive`` searches nested folders (inside each class
    folder, too). Raises ``ValueError`` for a missing root or when no file matches.
    """
    root = check_root(root, what)
    extensions = normalize_extensions(extensions)
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    top_files = _files(root, extensions, recursive=False)
    if labels is None:
        labels = bool(subdirs) and not top_files
    samples: list[tuple[Path, int]] = []
    classes: list[str] = []
    if labels:
        if top_files:
            log.warning("%d files directly in %s are not in a class folder and are ignored", len(top_files), root)
        for sub in subdirs:
            files = _files(sub, extensions, recursive)
            if not files:
                log.warning("class folder %s holds no %s files and is not a class", sub, "/".join(extensions))
                continue
            samples += [(f, len(classes)) for f in files]
            classes.append(sub.name)
    else:
        samples = [(f, -1) for f in _files(root, extensions, recursive)]
    if not samples:
        where = "in its class subfolders" if labels else ("under it" if recursive else "in it")
        raise ValueError(f"{what} is empty: no {', '.join(extensions)} files {where}: {root}")
    return FolderIndex(root=root, samples=samples, classes=classes)


class FolderDataset(Dataset):
    """Items ``(load(path), label)`` over a :class:`FolderIndex`, robust to bad files.

    A file that fails ``check`` (up front, when ``verify``) or ``load`` (when first read) is
    either skipped, with a warning and a ``(path, reason)`` entry in :attr:`skipped`, or, with
    ``strict=True``, raises ``ValueError`` naming it. Skipped files found up front are removed
    from the index (``len`` shrinks); one that fails later is replaced by the next readable file
    in index order, so the length, and the sampler's view of it, never change mid-epoch.

    ``verify=None`` checks up front when the folder has at most ``AUTO_VERIFY_MAX_FILES`` files.
    ``transform`` is applied to the loaded tensor (or object) before it is returned.

    :attr:`num_skipped` counts every distinct file skipped, in any process: files found bad
    late are marked in a mask in shared memory, so a DataLoader worker's finding reaches the
    main process (and the other workers, which then pass the file over without reading it).
    :attr:`skipped` lists the ``(path, reason)`` pairs this process itself saw.
    """

    def __init__(
        self,
        index: FolderIndex,
        load: Callable[[Path], object],
        transform: Callable[[object], torch.Tensor] | None = None,
        strict: bool = False,
        check: Callable[[Path], None] | None = None,
        verify: bool | None = None,
        what: str = "dataset",
    ):
        self.root = index.root
        self.classes = list(index.classes)
        self.num_classes = index.num_classes
        self.load = load
        self.transform = transform
        self.strict = strict
        self.what = what
        self.skipped: list[tuple[str, str]] = []
        samples = list(index.samples)
        if verify is None:
            verify = len(samples) <= AUTO_VERIFY_MAX_FILES
        if verify:
            probe = check or load
            good = []
            for path, label in samples:
                reason = _failure(probe, path)
                if reason is None:
                    good.append((path, label))
                else:
                    self._record(path, reason)
            samples = good
            if self.skipped:
                log.warning("%s: %d of %d files are unreadable and skipped (first: %s: %s)", what,
                            len(self.skipped), len(index.samples), *self.skipped[0])  # fmt: skip
        if not samples:
            raise ValueError(f"{what} is empty: none of the {len(index.samples)} files under {index.root} is readable")
        self.samples = samples
        self._skipped_up_front = len(self.skipped)
        # files found bad after construction, by index: shared with DataLoader workers (fork or spawn)
        self._bad = torch.zeros(len(samples), dtype=torch.uint8).share_memory_()
        self._index_of: dict[str, int] | None = None

    @property
    def num_skipped(self) -> int:
        """Distinct files skipped so far: up front, and later by this process or any worker."""
        return self._skipped_up_front + int(self._bad.sum())

    def _mark_bad(self, i: int, path: Path, reason: str) -> None:
        """Record sample ``i`` as unreadable (raises when ``strict``); once per file."""
        if self._bad[i]:
            return
        self._record(path, reason)
        self._bad[i] = 1

    def mark_bad(self, path: str | Path, reason: str) -> None:
        """Record a file of this dataset found unreadable elsewhere (e.g. by a decoder on the
        device): warned and counted once, or ``ValueError`` when ``strict``."""
        if self._index_of is None:
            self._index_of = {str(p): i for i, (p, _) in enumerate(self.samples)}
        i = self._index_of.get(str(path))
        if i is None:
            self._record(Path(path), reason)  # not one of ours: still warned about, not counted
        else:
            self._mark_bad(i, Path(path), reason)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]

    def _record(self, path: Path, reason: str) -> None:
        if self.strict:
            raise ValueError(f"{self.what}: cannot read {path}: {reason} (set strict=false to skip bad files)")
        warnings.warn(f"{self.what}: skipping unreadable file {path}: {reason}", RuntimeWarning, stacklevel=3)
        self.skipped.append((str(path), reason))

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        n = len(self.samples)
        if not -n <= idx < n:  # plain iteration (`for x, y in dataset`) stops here
            raise IndexError(f"index {idx} out of range for {n} samples")
        idx %= n
        for step in range(n):
            i = (idx + step) % n
            if self._bad[i]:
                continue
            path, label = self.samples[i]
            try:
                item = self.load(path)
            except Exception as exc:  # any reader error means "this file is bad"
                self._mark_bad(i, path, _reason(exc))
                continue
            return (self.transform(item) if self.transform else item), label
        raise ValueError(f"{self.what}: no readable file left under {self.root} ({self.num_skipped} skipped)")


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _failure(probe: Callable[[Path], object], path: Path) -> str | None:
    try:
        probe(path)
    except Exception as exc:
        return _reason(exc)
    return None


def split_folder(
    root: str | os.PathLike | None, split: str, aliases: Sequence[str] = (), what: str = "dataset"
) -> Path:
    """The folder for ``split``: ``root/<split>`` (or ``root/<alias>``, e.g. ``val`` for
    ``test``) when it exists, else ``root`` itself (one folder serves every split)."""
    base = check_root(root, what)
    for name in (split, *aliases):
        if (base / name).is_dir():
            return base / name
    return base


def num_skipped(dataset: object) -> int | None:
    """Unreadable files a dataset has skipped: ``dataset.num_skipped`` (every process, see
    :class:`FolderDataset`), else ``len(dataset.skipped)``, else None (nothing to skip)."""
    count = getattr(dataset, "num_skipped", None)
    if count is not None:
        return int(count)
    skipped = getattr(dataset, "skipped", None)
    return None if skipped is None else len(skipped)
