"""Building registered datasets by name, with option checking.

A dataset builder is ``builder(split="train"|"test", **options) -> Dataset`` whose items are
``(inputs, label)``. :func:`build_dataset` checks the options against the builder's signature
(an unknown one fails naming the valid ones and a close match) and fills options that share a
name with the model's own settings (``img_size``, ``in_chans``, ``num_frames``, ...) from the
model, so that the data fits the model unless the user says otherwise.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from maeflow._errors import unknown_name_message
from maeflow.plugins import registry

SPLITS = ("train", "test")


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split


def builder_options(builder: Callable, options: dict[str, Any] | None = None, split: str = "train") -> list[str] | None:
    """Names of the keyword options a builder accepts (``None`` when it takes ``**kwargs``).
    A builder whose options depend on its data (``webdataset``: those of the dataset its shards
    came from) says so with a ``valid_options(options)`` attribute."""
    dynamic = getattr(builder, "valid_options", None)
    if dynamic is not None:
        return dynamic({**(options or {}), "_split": split})
    params = inspect.signature(builder).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.name != "split" and p.kind is not inspect.Parameter.VAR_POSITIONAL]


def check_options(what: str, options: dict[str, Any], valid: list[str] | None) -> None:
    """``ValueError`` for the first option not in ``valid`` (``None``: anything goes)."""
    if valid is None:
        return
    for key in options:
        if key not in valid:
            raise ValueError(unknown_name_message(f"{what} option", key, valid))


def model_settings(model: Any) -> dict[str, Any]:
    """The model's settings: its preset config dataclass (``model.config``) updated with the
    arguments it was created with (``model.model_args``)."""
    out: dict[str, Any] = {}
    config = getattr(model, "config", None)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        out.update(dataclasses.asdict(config))
    out.update(getattr(model, "model_args", None) or {})
    return out


def build_dataset(name: str, split: str = "train", model: Any = None, **options: Any):
    """Build the registered dataset ``name`` for ``split``.

    With ``model``, options the builder accepts and the model also has (by name) default to the
    model's values. Raises ``ValueError`` for an unknown dataset, split or option.
    """
    builder = registry("dataset").get(name)
    check_split(split)
    valid = builder_options(builder, options, split)
    check_options(f"dataset {name!r}", options, valid)
    if model is not None and valid is not None:
        settings = model_settings(model)
        for key in valid:
            if key not in options and key in settings:
                options[key] = settings[key]
    return builder(split=split, **options)
