"""Modality-agnostic data helpers.

- :func:`scan_folder` → :class:`FolderIndex`: recursive file search with an extension filter,
  labels from class subfolders (sorted names → deterministic class index), clear ``ValueError``
  for a missing root or an empty dataset.
- :class:`FolderDataset`: items ``(load(path), label)`` that skip a corrupt file with a warning
  and record it in ``dataset.skipped`` as ``(path, reason)``, or raise ``ValueError`` naming
  it when ``strict``; ``dataset.num_skipped`` counts skipped files across DataLoader workers
  (:func:`num_skipped` reads it, or ``len(skipped)``, from any dataset). A modality supplies
  only ``load(path)`` (and optionally a cheap ``check(path)``).
- :func:`split_folder`: ``root/train`` vs ``root/test`` (or ``root/val``) when they exist.
- :func:`build_dataloader`: the one loader builder: workers, pinned memory, persistent workers,
  seeded shuffling or a sampler, and the dataset's device pipeline. With a :class:`ShardedSampler`
  (resumable, rank-sharded; what training uses) items are seeded per sample by
  :class:`SeededItems` and carry their mask seeds.
- :func:`stratified_split`: a fixed per-class train/test split of one labeled array.
- :func:`build_dataset`: a registered dataset by name with checked options, defaulting
  options such as ``img_size`` to the model's.
- :class:`SampleCodec` / :class:`Record` (:mod:`maeflow.data.records`): how a plugin reads one
  stored sample from a file or its bytes, registered per dataset (``registry.codec``), so that
  its folder dataset and tar shards of it (:mod:`maeflow.data.shards`: ``maeflow shard`` writes
  them, the core dataset ``webdataset`` reads them) decode and augment alike.
- :func:`describe_datasets`: every registered dataset's options, types, defaults and
  docstring descriptions (:mod:`maeflow.data.describe`; ``python -m maeflow.data.docgen``
  writes them into docs/data.md).

The dataset contract: ``builder(split="train"|"test", **options) -> Dataset`` whose items are
``(inputs: Tensor, label: int)`` (label -1 when unlabeled), with ``num_classes`` (int or None),
``skipped`` (for file datasets) and optionally ``display_options`` (passed to the visualizer)
and a ``device_pipeline(device) -> DevicePipeline`` method (:mod:`maeflow.data.device`: workers
load raw items, the batch is finished on the accelerator; ``data.device_pipeline`` chooses).
"""

from maeflow.data.describe import DatasetDoc, OptionDoc, describe_datasets
from maeflow.data.device import DeviceBatches, DevicePipeline, offers_device_pipeline
from maeflow.data.folder import (
    AUTO_VERIFY_MAX_FILES,
    FolderDataset,
    FolderIndex,
    check_root,
    normalize_extensions,
    num_skipped,
    scan_folder,
    split_folder,
)
from maeflow.data.loader import build_dataloader, choose_device_pipeline, seed_worker
from maeflow.data.records import Record, SampleCodec
from maeflow.data.registry import SPLITS, build_dataset, builder_options, check_options, check_split, model_settings
from maeflow.data.sampling import SeededItems, ShardedSampler, sample_seed
from maeflow.data.split import stratified_split

__all__ = [
    "AUTO_VERIFY_MAX_FILES",
    "SPLITS",
    "SeededItems",
    "ShardedSampler",
    "DatasetDoc",
    "DeviceBatches",
    "DevicePipeline",
    "FolderDataset",
    "FolderIndex",
    "build_dataloader",
    "build_dataset",
    "builder_options",
    "check_options",
    "check_root",
    "check_split",
    "choose_device_pipeline",
    "describe_datasets",
    "model_settings",
    "normalize_extensions",
    "num_skipped",
    "OptionDoc",
    "Record",
    "SampleCodec",
    "offers_device_pipeline",
    "sample_seed",
    "scan_folder",
    "seed_worker",
    "split_folder",
    "stratified_split",
]
