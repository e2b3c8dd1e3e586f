"""Tar shards on disk and elsewhere: writing them (WebDataset layout, with a byte-offset
index) and reading one member back by its offset.

A shard set is a folder (or URL prefix) holding ``{split}-{n:06d}.tar`` files and one
``{split}.index.json``. Each sample ``k`` is three tar members, as WebDataset writes them:
``{k}.{ext}`` (the original file's bytes; ``ext`` its suffix), ``{k}.cls`` (the label) and
``{k}.json`` (name and metadata); any WebDataset reader can stream the tars. The index lists,
per shard, every sample's key, suffix, data offset and size, label and original name, so a
reader fetches exactly one member's bytes without scanning the tar.

Where the shards live (:class:`ShardStore`):

- a local folder: ``open`` + ``seek`` (one handle per shard and process, opened lazily so that
  forked loader workers never share a file position);
- any URL fsspec understands (``s3://``, ``gs://``, ``https://``, ``file://`` ...): a ranged
  read (``fs.cat_file(path, start, end)``), so each process fetches only its own samples'
  bytes; fsspec needs the filesystem's package (``s3fs``, ``gcsfs``) installed by the user;
- ``pipe:COMMAND`` with ``{name}`` in it (e.g. ``pipe:aws s3 cp s3://bucket/shards/{name} -``):
  the command's standard output is the file. A pipe cannot seek, so the whole shard is read
  once and kept in memory (the last ``cache_shards`` shards, per process).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import tarfile
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from maeflow.data.records import Record

INDEX_FORMAT = "maeflow-shards"
INDEX_VERSION = 1


def index_name(split: str) -> str:
    return f"{split}.index.json"


def _ext(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower().lstrip(".")
    return suffix if suffix and suffix not in ("cls", "json") else "bin"


def _member_offsets(path: Path) -> dict[str, tuple[int, int]]:
    """``member name → (data offset, size)`` of a tar file."""
    with tarfile.open(path, "r:") as tar:
        return {m.name: (m.offset_data, m.size) for m in tar.getmembers() if m.isfile()}


def write_shards(records: Iterable[Record], out_dir: str | os.PathLike, split: str, shard_size: int,
                 header: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Write ``records`` to ``out_dir/{split}-NNNNNN.tar`` shards of ``shard_size`` samples
    each (``webdataset.TarWriter``) and their index ``out_dir/{split}.index.json``; ``header``
    (source dataset, options, classes, ...) goes into the index. Returns the index."""
    from maeflow import import_optional

    TarWriter = import_optional("webdataset", install="maeflow[shards]", needed_for="writing shards").TarWriter
    if shard_size < 1:
        raise ValueError(f"shard size must be a positive number of samples, got {shard_size}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, Any]] = []
    pending: list[tuple[str, str, int, str]] = []  # key, ext, label, name of the open shard
    writer = None
    count = 0

    def close() -> None:
        writer.close()
        name = shards[-1]["name"]
        offsets = _member_offsets(out / name)
        shards[-1]["samples"] = [[key, ext, *offsets[f"{key}.{ext}"], label, rel] for key, ext, label, rel in pending]
        pending.clear()

    for record in records:
        if count % shard_size == 0:
            if writer is not None:
                close()
            shards.append({"name": f"{split}-{len(shards):06d}.tar"})
            writer = TarWriter(str(out / shards[-1]["name"]))
        key, ext = f"{count:09d}", _ext(record.name)
        meta = {"name": record.name, "label": int(record.label), **record.meta}
        writer.write({"__key__": key, ext: record.data, "cls": str(int(record.label)).encode(),
                      "json": json.dumps(meta, sort_keys=True).encode()})  # fmt: skip
        pending.append((key, ext, int(record.label), record.name))
        count += 1
    if writer is None:
        raise ValueError("nothing to shard: the dataset has no samples")
    close()
    index = {"format": INDEX_FORMAT, "version": INDEX_VERSION, "split": split, **header,
             "num_samples": count, "shards": shards}  # fmt: skip
    tmp = out / (index_name(split) + ".tmp")
    tmp.write_text(json.dumps(index, separators=(",", ":")) + "\n", encoding="utf-8")
    tmp.replace(out / index_name(split))
    return index


class ShardStore:
    """Reads the files of one shard set: the index and members of its shards by byte range.
    Picklable (for loader workers); handles and caches are per process."""

    def __init__(self, root: str | os.PathLike, cache_shards: int = 2):
        self.root = str(root)
        self.cache_shards = max(1, int(cache_shards))
        self.kind = "pipe" if self.root.startswith("pipe:") else "url" if "://" in self.root else "local"
        if self.kind == "pipe" and "{name}" not in self.root:
            raise ValueError(f"a pipe: shard location needs {{name}} where the file name goes, got {self.root!r}")
        self._pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "cache_shards": self.cache_shards, "kind": self.kind, "_pid": None}

    def close(self) -> None:
        """Close this process's open shard files (they reopen on the next read)."""
        if self._pid == os.getpid():
            for handle in self._handles.values():
                handle.close()
            self._handles.clear()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _fresh(self) -> None:
        if self._pid != os.getpid():  # a new process (or first use): nothing inherited
            self._pid = os.getpid()
            self._handles: OrderedDict[str, Any] = OrderedDict()
            self._blobs: OrderedDict[str, bytes] = OrderedDict()
            self._fs = None

    def location(self, name: str) -> str:
        if self.kind == "pipe":
            return self.root.replace("{name}", name)
        if self.kind == "url":
            return self.root.rstrip("/") + "/" + name
        return str(Path(self.root).expanduser() / name)

    def _url_fs(self):
        from fsspec.core import url_to_fs

        if self._fs is None:
            self._fs = url_to_fs(self.location(""))[0]
        return self._fs

    def _pipe(self, name: str) -> bytes:
        command = self.location(name)[len("pipe:") :]
        done = subprocess.run(shlex.split(command), capture_output=True, check=False)
        if done.returncode:
            err = done.stderr.decode(errors="replace").strip()[-300:]
            raise OSError(f"`{command}` exited with {done.returncode}: {err}")
        return done.stdout

    def read_file(self, name: str) -> bytes:
        """A whole file of the set (the index)."""
        self._fresh()
        if self.kind == "pipe":
            return self._pipe(name)
        if self.kind == "url":
            from fsspec.core import url_to_fs

            fs, path = url_to_fs(self.location(name))
            return fs.cat_file(path)
        path = Path(self.location(name))
        if not path.is_file():
            raise FileNotFoundError(f"no shard index {path}: write one with `maeflow shard CONFIG -o {path.parent}`")
        return path.read_bytes()

    def read(self, name: str, offset: int, size: int) -> bytes:
        """``size`` bytes of shard ``name`` from ``offset``; ``OSError`` when fewer exist."""
        self._fresh()
        if self.kind == "local":
            handle = self._handles.get(name)
            if handle is None:
                handle = self._handles[name] = open(self.location(name), "rb")  # noqa: SIM115 (kept open)
                while len(self._handles) > 16:
                    self._handles.popitem(last=False)[1].close()
            handle.seek(offset)
            data = handle.read(size)
        elif self.kind == "url":
            from fsspec.core import url_to_fs

            data = self._url_fs().cat_file(url_to_fs(self.location(name))[1], start=offset, end=offset + size)
        else:
            blob = self._blobs.get(name)
            if blob is None:
                blob = self._blobs[name] = self._pipe(name)
                while len(self._blobs) > self.cache_shards:
                    self._blobs.popitem(last=False)
            self._blobs.move_to_end(name)
            data = blob[offset : offset + size]
        if len(data) != size:
            raise OSError(f"shard {name} ends early: {len(data)} of {size} bytes at offset {offset}")
        return data


def read_index(store: ShardStore, split: str) -> dict[str, Any]:
    """The shard set's index for ``split``, checked."""
    index = json.loads(store.read_file(index_name(split)))
    if index.get("format") != INDEX_FORMAT:
        raise ValueError(f"{store.location(index_name(split))} is not a maeflow shard index")
    if int(index.get("version", 0)) > INDEX_VERSION:
        raise ValueError(f"shard index version {index['version']} is newer than this maeflow reads ({INDEX_VERSION})")
    return index
