"""``data.name: webdataset``: training from tar shards written by ``maeflow shard``.

The reader is map-style over the shard index (random access by byte offset, see
:mod:`maeflow.data.shardio`), not WebDataset's iterable pipeline. The trainer's
:class:`~maeflow.data.ShardedSampler` then works as for a folder: every sample once per epoch
over all processes, mask and augmentation seeds per sample position, and a mid-epoch resume
that continues with exactly the samples the uninterrupted run would have seen. An iterable
pipeline splits shards between ranks and workers by itself, and with shards of unequal sizes
it can give neither an exact once-per-epoch count nor a resume point without reading the
skipped prefix again.

Order (``shuffle``), for the sampler's epoch seed ``s = run.seed + epoch``:

- ``"shards"`` (default; what streaming from object storage wants): the shards are shuffled
  and dealt to the ranks, each shard to the rank with the fewest samples so far, so that a
  rank reads whole shards of its own. **Remainder rule**: an epoch has ``usable = len //
  global_batch * global_batch`` samples (as for folders), ``usable / world`` per rank; a rank
  whose shards hold more gives the last samples of its last shard to the ranks whose shards
  hold fewer (in rank order), and what is left over — fewer than one global batch — is not
  seen this epoch (other samples are left over in the next epoch, as the shard order
  changes). Then each rank's samples pass a seeded shuffle buffer (``shuffle_buffer``
  samples, WebDataset's ``shuffle(n)``).
- ``"global"``: one uniform permutation of all samples (``torch.randperm``, exactly the
  folder dataset's order: the same seed gives the same batches as training on the folder).

Loader workers of one rank take turns batch by batch, so they read members of the same shards.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from maeflow.data.folder import FolderDataset, FolderIndex
from maeflow.data.records import SampleCodec, as_source
from maeflow.data.shardio import ShardStore, read_index
from maeflow.plugins import registry

SHUFFLE_MODES = ("shards", "global")
_OWN_OPTIONS = ("root", "shuffle", "shuffle_buffer", "strict", "verify", "cache_shards")


class Member(NamedTuple):
    """One sample in a shard: where its data member lies, and the original file's name."""

    shard: str
    key: str
    ext: str
    offset: int
    size: int
    name: str

    def __str__(self) -> str:  # what warnings, ``skipped`` and strict errors name
        return f"{self.shard}:{self.key}.{self.ext} ({self.name})"


def buffer_shuffle(items: Sequence[int], buffer: int, rng: np.random.Generator) -> list[int]:
    """WebDataset's shuffle buffer, seeded: fill ``buffer`` slots, then each new item replaces
    a random slot whose item is emitted; the rest leave in random order at the end."""
    if buffer <= 1:
        return list(items)
    slots: list[int] = []
    out: list[int] = []
    draws = rng.integers(0, buffer, size=max(0, len(items) - buffer))
    for i, item in enumerate(items):
        if len(slots) < buffer:
            slots.append(item)
            continue
        j = int(draws[i - buffer])
        out.append(slots[j])
        slots[j] = item
    return out + [slots[i] for i in rng.permutation(len(slots))]


def shard_order(groups: Sequence[Sequence[int]], seed: int, num_replicas: int, usable: int,
                buffer: int) -> list[int]:  # fmt: skip
    """A permutation of every sample index in ``groups`` (one list per shard) for one epoch:
    position ``k·W + r`` (``W = num_replicas``) is rank ``r``'s ``k``-th sample, as
    :class:`~maeflow.data.ShardedSampler` deals them; the first ``usable`` positions are the
    epoch's (see the module docstring for the rule)."""
    W = num_replicas
    g = torch.Generator().manual_seed(int(seed))
    order_of_shards = torch.randperm(len(groups), generator=g).tolist()
    loads, owned = [0] * W, [[] for _ in range(W)]
    for s in order_of_shards:  # each shard to the least loaded rank (ties: the lowest rank)
        r = min(range(W), key=lambda i: (loads[i], i))
        owned[r].append(s)
        loads[r] += len(groups[s])
    streams = [[i for s in owned[r] for i in groups[s]] for r in range(W)]
    quota = usable // W
    pool = [i for stream in streams for i in stream[quota:]]  # the over-full ranks' last samples
    final = []
    for r, stream in enumerate(streams):
        short = quota - min(quota, len(stream))
        mine, pool = stream[:quota] + pool[:short], pool[short:]
        final.append(buffer_shuffle(mine, buffer, np.random.default_rng([int(seed) & 0xFFFFFFFF, r])))
    order = [final[k % W][k // W] for k in range(quota * W)]
    return order + pool


class ShardDataset(FolderDataset):
    """A :class:`~maeflow.data.FolderDataset` whose "files" are shard members: the same skip
    counting (shared across workers), ``strict`` and replacement of a bad sample by the next
    readable one, with each member decoded by the source dataset's own :class:`SampleCodec`."""

    def __init__(self, store: ShardStore, index: dict[str, Any], codec: SampleCodec, shuffle: str = "shards",
                 shuffle_buffer: int = 1000, strict: bool = False, verify: bool = False):  # fmt: skip
        if shuffle not in SHUFFLE_MODES:
            raise ValueError(f"shuffle must be one of {', '.join(SHUFFLE_MODES)}, got {shuffle!r}")
        samples = [(Member(sh["name"], k, e, int(o), int(n), name), int(label))
                   for sh in index["shards"] for k, e, o, n, label, name in sh["samples"]]  # fmt: skip
        folder = FolderIndex(root=store.root, samples=samples, classes=list(index.get("classes") or []))
        load = _MemberReader(store, codec.load, codec.needs_path)
        check = _MemberReader(store, codec.check, codec.needs_path) if codec.check else None
        super().__init__(folder, load=load, transform=codec.transform, strict=strict, check=check, verify=verify,
                         what=f"webdataset {store.root}")  # fmt: skip
        self.num_classes = index.get("num_classes", self.num_classes)
        self.source = index.get("source")
        self.shuffle = shuffle
        self.shuffle_buffer = int(shuffle_buffer)
        codec.apply_attrs(self)

    def epoch_order(self, seed: int, num_replicas: int, usable: int) -> list[int] | None:
        """The epoch's sample order for :class:`~maeflow.data.ShardedSampler` (None: its own
        uniform permutation, ``shuffle="global"``)."""
        if self.shuffle == "global":
            return None
        groups: dict[str, list[int]] = {}
        for i, (member, _) in enumerate(self.samples):
            groups.setdefault(member.shard, []).append(i)
        return shard_order(list(groups.values()), seed, num_replicas, usable, self.shuffle_buffer)


class _MemberReader:
    """``fn`` applied to one member's bytes (a class, so that loader workers can pickle it)."""

    def __init__(self, store: ShardStore, fn, needs_path: bool):
        self.store, self.fn, self.needs_path = store, fn, needs_path

    def __call__(self, member: Member):
        data = self.store.read(member.shard, member.offset, member.size)
        with as_source(data, member.name, self.needs_path) as source:
            return self.fn(source)


def _codec_builder(source: str):
    codecs = registry("codec")
    if source not in codecs:
        raise ValueError(f"the shards hold {source!r} samples, but no plugin registers a codec for {source!r} "
                         f"(codecs: {', '.join(codecs.names()) or 'none'})")  # fmt: skip
    return codecs.get(source)


def _codec_options(builder) -> list[str]:
    return [p.name for p in inspect.signature(builder).parameters.values()
            if p.name != "split" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]  # fmt: skip


def webdataset(
    split: str = "train",
    root: str | None = None,
    shuffle: str = "shards",
    shuffle_buffer: int = 1000,
    strict: bool = False,
    verify: bool = False,
    cache_shards: int = 2,
    **options: Any,
) -> ShardDataset:
    """Tar shards written by ``maeflow shard`` (WebDataset layout plus a byte-offset index),
    decoded and augmented by the plugin of the dataset they were written from. Every other
    option is that dataset's (e.g. ``img_size``, ``num_frames``, ``decoder``, ``repeats``):
    the options recorded in the index are the defaults, the model's settings and the given
    options come first.

    :param root: the shard folder, an fsspec URL (``s3://bucket/shards``) or ``pipe:COMMAND``
        with ``{name}`` in it; holds ``{split}.index.json``.
    :param shuffle: "shards" (shards dealt to ranks, a shuffle buffer) or "global" (one uniform
        permutation, the folder dataset's order); with ``data.shuffle=false`` the index order.
    :param shuffle_buffer: samples in each rank's shuffle buffer (``shuffle="shards"``).
    :param strict: raise ``ValueError`` naming an unreadable sample instead of skipping it.
    :param verify: decode every sample up front (reads every byte of the shards).
    :param cache_shards: whole shards kept in memory per process for ``pipe:`` sources.
    """
    if root is None or str(root) == "":
        raise ValueError("the webdataset dataset needs its shards: set data.options.root to the folder (or URL) "
                         "that `maeflow shard` wrote")  # fmt: skip
    store = ShardStore(root, cache_shards)
    index = read_index(store, split)
    source = index["source"]
    builder = _codec_builder(source["dataset"])
    valid = _codec_options(builder)
    unknown = [k for k in options if k not in valid]
    if unknown:
        from maeflow._errors import unknown_name_message

        raise ValueError(unknown_name_message(f"webdataset option (for {source['dataset']} shards)", unknown[0],
                                              [*_OWN_OPTIONS, *valid]))  # fmt: skip
    merged = {k: v for k, v in (source.get("options") or {}).items() if k in valid}
    merged.update(options)
    codec = builder(split=split, **merged)
    return ShardDataset(store, index, codec, shuffle=shuffle, shuffle_buffer=shuffle_buffer, strict=strict,
                        verify=verify)  # fmt: skip


def _valid_options(options: dict[str, Any]) -> list[str] | None:
    """webdataset's own options plus those of the codec of the shards at ``options["root"]``
    (what :func:`maeflow.data.build_dataset` checks and fills from the model)."""
    root = options.get("root")
    if not root:
        return None  # not known without the shards (probes then pass augment=False, which every codec takes)
    try:
        index = read_index(ShardStore(root), options.get("_split", "train"))
        return [*_OWN_OPTIONS, *_codec_options(_codec_builder(index["source"]["dataset"]))]
    except (OSError, ValueError, KeyError):
        return None  # the builder itself reports a missing or foreign index


webdataset.valid_options = _valid_options  # type: ignore[attr-defined]
