"""Registries of named components, one per kind, filled by plugins.

Kinds: ``model`` (preset builders), ``tokenizer``, ``masker``, ``target_normalizer``, ``loss``,
``dataset``, ``demo``, ``visualizer``, ``checkpoint_format``, ``bench_subject`` (a peer
implementation ``maeflow bench`` measures next to a preset, see
:class:`maeflow.bench.subjects.BenchSubject`), ``codec`` (how a dataset's stored samples are
decoded, by dataset name, see :mod:`maeflow.data.records`). Plugins add to them through the
``maeflow_register`` hook (see :mod:`maeflow.hookspecs`); user code may also call
:func:`maeflow.register` directly, e.g. in a notebook. Read them with :func:`maeflow.registry`.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maeflow._errors import unknown_name_message

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

KINDS: tuple[str, ...] = (
    "model",
    "tokenizer",
    "masker",
    "target_normalizer",
    "loss",
    "dataset",
    "demo",
    "visualizer",
    "checkpoint_format",
    "bench_subject",
    "codec",
)


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    plugin: str


@dataclass(frozen=True)
class Demo:
    """What ``maeflow demo NAME`` runs: a training config the plugin ships as package data
    (``importlib.resources.files(__package__) / "configs" / "demo.yaml"``), so that it is found
    from an installed wheel. ``default``: the demo a bare ``maeflow demo`` runs."""

    config: Traversable | os.PathLike
    default: bool = False


class Registry:
    """Named objects of one kind. ``get`` on an unknown name raises ``ValueError`` listing the
    registered names with a close match."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, obj: Any, plugin: str = "user", override: bool = False) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r}")
        old = self._entries.get(name)
        if old is not None and not override and old.obj is not obj:
            raise ValueError(
                f"{self.kind} {name!r} is already registered by plugin {old.plugin!r}; pass override=True to replace it"
            )
        self._entries[name] = Entry(name, obj, plugin)

    def get(self, name: str) -> Any:
        entry = self._entries.get(name)
        if entry is None:
            raise ValueError(unknown_name_message(self.kind.replace("_", " "), name, self._entries))
        return entry.obj

    def entry(self, name: str) -> Entry:
        self.get(name)
        return self._entries[name]

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in sorted(self._entries)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


class Registrar:
    """What a plugin's ``maeflow_register`` hook receives: adds components under its name.

    Each method takes a registry name and the object; see the kinds above for what each object
    must be (docs/plugins.md has the details).
    """

    def __init__(self, registries: dict[str, Registry], plugin: str):
        self._registries = registries
        self.plugin = plugin

    def add(self, kind: str, name: str, obj: Any, override: bool = False) -> None:
        if kind not in self._registries:
            raise ValueError(unknown_name_message("component kind", kind, self._registries))
        self._registries[kind].add(name, obj, plugin=self.plugin, override=override)

    def model(self, name: str, builder: Any) -> None:
        """``builder(**overrides) -> MaskedAutoencoder``."""
        self.add("model", name, builder)

    def tokenizer(self, name: str, factory: Any) -> None:
        self.add("tokenizer", name, factory)

    def masker(self, name: str, factory: Any) -> None:
        self.add("masker", name, factory)

    def target_normalizer(self, name: str, factory: Any) -> None:
        self.add("target_normalizer", name, factory)

    def loss(self, name: str, factory: Any) -> None:
        self.add("loss", name, factory)

    def dataset(self, name: str, builder: Any) -> None:
        """``builder(split="train"|"test", **options) -> torch Dataset`` of ``(inputs, label)``."""
        self.add("dataset", name, builder)

    def demo(self, name: str, config: Traversable | str | os.PathLike, default: bool = False) -> None:
        """A small end-to-end run (nothing downloaded, minutes on a CPU): ``config`` is a
        training config shipped as package data; ``maeflow demo NAME`` trains it and compares
        the encoder's probes with a randomly initialized twin. See :class:`Demo`."""
        if isinstance(config, (str, os.PathLike)):
            config = Path(config)
        self.add("demo", name, Demo(config, default))

    def visualizer(self, modality: str, fn: Any) -> None:
        """``fn(model, inputs, output, path, **options) -> path`` for models of ``modality``."""
        self.add("visualizer", modality, fn)

    def checkpoint_format(self, name: str, fmt: Any) -> None:
        """An object with ``detect``, ``to_maeflow`` and optionally ``from_maeflow``."""
        self.add("checkpoint_format", name, fmt)

    def bench_subject(self, kind: str, cls: Any) -> None:
        """A :class:`maeflow.bench.subjects.BenchSubject` class, used by bench entries ``kind: NAME``."""
        self.add("bench_subject", kind, cls)

    def codec(self, dataset: str, builder: Any) -> None:
        """``builder(split, **options) -> maeflow.data.records.SampleCodec``: how the samples of
        dataset ``dataset`` are read from their stored bytes (its folder and its shards share it)."""
        self.add("codec", dataset, builder)
