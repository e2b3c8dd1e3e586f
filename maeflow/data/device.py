"""A dataset's optional device pipeline: loader workers produce cheap raw items, the accelerator
finishes each batch.

CPU workers decoding and augmenting every sample can fall far behind a GPU's training step
(images: PIL decode + RandomResizedCrop reach about a third of a ViT-B step's rate). A dataset
that can do better offers a *device pipeline* through one optional method::

    def device_pipeline(self, device: torch.device) -> DevicePipeline: ...

- ``items``: a map-style dataset with the same length and indices as the dataset itself, whose
  items are ``(raw, label)``: what a worker can produce cheaply (for images, the file bytes).
  Items are read under the same per-sample seeding as the dataset's own items
  (:class:`maeflow.data.SeededItems`), so random draws an item makes with ``torch``,
  ``random`` or numpy (say, the crop box parameters) belong to the sample: they repeat after a
  resume and do not depend on the number of processes or workers.
- ``collate(raws) -> raw_batch``: the raw inputs of one batch as one object (default: a list).
- ``to_device(raw_batch, device) -> Tensor``: the batch's inputs on ``device``, ``(B, ...)`` as
  stacking the dataset's own items would give (up to decoder rounding): the same recipe, only
  run on the device.

``data.device_pipeline`` (``auto``: on CUDA when the dataset offers one) chooses between this
path and the usual DataLoader over the dataset's items; see
:func:`maeflow.data.build_dataloader`. The core knows nothing about what the raw items
are: the image plugin's ``image_folder`` reads JPEG bytes and decodes them with nvJPEG.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class DevicePipeline:
    """What a dataset's ``device_pipeline(device)`` returns (see the module docstring)."""

    items: Dataset
    to_device: Callable[[Any, torch.device], torch.Tensor]
    collate: Callable[[list[Any]], Any] = list
    name: str = "device pipeline"


def offers_device_pipeline(dataset: Any) -> bool:
    """Whether ``dataset`` has a ``device_pipeline`` method."""
    return callable(getattr(dataset, "device_pipeline", None))


class DeviceBatches:
    """Iterate ``loader`` (batches ``(raw_batch, *rest)``) and yield ``(to_device(raw_batch),
    *rest)``: the inputs on ``device``, the rest (labels, positions) as the loader gave them.

    On CUDA (``prefetch=True``) the next batch is prepared on a side stream while the caller's
    work on the current one runs, so the data work overlaps the training step on the device.
    """

    def __init__(
        self,
        loader: Iterable,
        to_device: Callable[[Any, torch.device], torch.Tensor],
        device: str | torch.device,
        prefetch: bool = True,
    ):
        self.loader = loader
        self.to_device = to_device
        self.device = torch.device(device)
        self.prefetch = prefetch and self.device.type == "cuda"

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def _prepare(self, batch) -> tuple:
        raw, *rest = batch
        return (self.to_device(raw, self.device), *rest)

    def __iter__(self) -> Iterator[tuple]:
        if not self.prefetch:
            for batch in self.loader:
                yield self._prepare(batch)
            return
        side = torch.cuda.Stream(self.device)
        main = torch.cuda.current_stream(self.device)
        pending = None
        for batch in self.loader:
            with torch.cuda.stream(side):
                ready = self._prepare(batch)
            if pending is not None:
                yield pending
            main.wait_stream(side)
            for t in ready:  # made on the side stream, used on the main one
                if isinstance(t, torch.Tensor) and t.device.type == "cuda":
                    t.record_stream(main)
            pending = ready
        if pending is not None:
            yield pending
