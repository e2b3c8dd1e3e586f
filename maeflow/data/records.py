"""What one stored sample is, and how a modality turns it back into an item.

A dataset stores a sample as a **record**: the original file's bytes (no re-encoding), its
name (the suffix tells the decoder the format), the label and a little metadata. The plugin
writes "how to read one sample" once, as a :class:`SampleCodec`, and both of its datasets use
it: the folder dataset calls ``codec.load(path)`` on a file, the shard dataset
(:mod:`maeflow.data.shards`) calls it on the same bytes read back from a tar shard.

``load`` accepts a path or a binary file object (PIL, PyAV, numpy and soundfile all do); a
shard member comes as an in-memory file whose ``name`` is the member's file name, so that a
reader can still go by the suffix. A reader that needs a real file (a library that only opens
paths) sets ``needs_path``: shard members are then spilled to a temporary file of that name.

A plugin registers the codec under its folder dataset's name::

    registry.codec("image_folder", image_codec)   # image_codec(split, **options) -> SampleCodec

and a dataset that is not a folder (generated data) can still be sharded when it offers
``records()`` (see :class:`Record`) and registers a codec for what it stores.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO


@dataclass
class Record:
    """One sample as stored: ``name`` (a relative file name; its suffix is the format),
    ``data`` (the file's bytes), ``label`` (-1: none) and JSON-able ``meta``."""

    name: str
    data: bytes
    label: int = -1
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class SampleCodec:
    """How a modality reads one sample: ``load(path | binary file) -> object``, then the
    optional ``transform(object) -> tensor`` (augmentation, normalization). ``check`` is a
    cheaper up-front test of a file (``verify``); ``needs_path``: ``load`` must get a real file.
    ``attrs`` are set on the dataset that uses the codec (``display_options``, ``repeats``, ...).
    """

    load: Callable[[Any], Any]
    transform: Callable[[Any], Any] | None = None
    check: Callable[[Any], None] | None = None
    needs_path: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)

    def apply_attrs(self, dataset: object) -> None:
        for key, value in self.attrs.items():
            setattr(dataset, key, value)


@contextlib.contextmanager
def as_source(data: bytes, name: str, needs_path: bool) -> Iterator[BinaryIO | Path]:
    """``data`` as what a codec's ``load`` takes: an in-memory file whose ``name`` is the
    original's file name, or (``needs_path``) a temporary file of that name (in ``/dev/shm``
    where it exists), removed after."""
    if not needs_path:
        source = io.BytesIO(data)
        source.name = Path(name).name  # readers that go by the suffix, or seed by the name
        yield source
        return
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="maeflow-", dir=base) as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(data)
        yield path


def folder_records(dataset: Any) -> Iterator[Record]:
    """Records of a :class:`~maeflow.data.FolderDataset`: every readable file's bytes, in
    index order, with its label, class name and path relative to the dataset root."""
    classes = list(getattr(dataset, "classes", []) or [])
    root = Path(dataset.root)
    for path, label in dataset.samples:
        path = Path(path)
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = path.name
        meta: dict[str, Any] = {"file": rel}
        if 0 <= label < len(classes):
            meta["class"] = classes[label]
        yield Record(rel, path.read_bytes(), int(label), meta)


def dataset_records(dataset: Any) -> Iterator[Record]:
    """The records of any shardable dataset: its own ``records()`` when it has one, else the
    files of a folder dataset; a ``ValueError`` for a dataset that offers neither."""
    if hasattr(dataset, "records"):
        return iter(dataset.records())
    if hasattr(dataset, "samples") and hasattr(dataset, "root"):
        return folder_records(dataset)
    raise ValueError(f"{type(dataset).__name__} cannot be sharded: it is not a folder dataset and has no "
                     "records() method (see maeflow.data.records)")  # fmt: skip
