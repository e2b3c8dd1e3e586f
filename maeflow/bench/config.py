"""The bench config: a list of entries, each a model preset plus a data source, validated
against the registries before anything runs.

A config file is YAML::

    device: auto            # auto | cpu | cuda
    isolation: subprocess   # each entry in a fresh process (clean peak memory, crash isolation)
    defaults: {batch: 8, steps: 20, warmup: 5, precision: fp32}
    entries:
      - preset: mae_vit_test                      # any registered model preset
        args: {img_size: 32}                       # overrides passed to create_model
        data: synthetic                            # tokenizer.example_inputs(batch), made once on the device
      - preset: mae_vit_test
        data: {dataset: digits, options: {}}       # any registered dataset
        probe: true
      - kind: <subject>                            # a bench subject a plugin registers: a peer
        preset: mae_vit_test                       # implementation built like this preset

``defaults`` fill every entry's unset fields. Unknown keys, presets, subjects, datasets and bad
values raise ``ValueError`` naming the entry and the valid choices. Overrides, ``${ENV}``
references and messages follow the run config's grammar (:mod:`maeflow._configio`,
docs/configs.md).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from maeflow._configio import check_keys, interpolate_env, read_yaml, set_dotted, validate
from maeflow._errors import unknown_name_message
from maeflow.nn.attention import BACKENDS

Precision = Literal["fp32", "bf16", "fp16"]


class DataSpec(BaseModel):
    """A registered dataset by name, with the options its builder takes."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    options: dict[str, Any] = Field(default_factory=dict)
    workers: int = Field(0, ge=0, description="DataLoader worker processes")
    # as data.device_pipeline in a run config: the dataset's GPU pipeline (auto: on CUDA when offered)
    device_pipeline: bool | Literal["auto"] = "auto"


class OptimizerSpec(BaseModel):
    """AdamW; ``fused`` uses PyTorch's fused kernel (``auto``: as the trainer, on CUDA and CPU)."""

    model_config = ConfigDict(extra="forbid")

    lr: float = Field(1.5e-4, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    fused: Literal["auto", True, False] = "auto"


class BenchEntry(BaseModel):
    """One measured configuration."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    kind: str = "maeflow"  # "maeflow", or a registered bench subject (maeflow.bench.subjects)
    preset: str
    args: dict[str, Any] = Field(default_factory=dict)
    data: Literal["synthetic"] | DataSpec = "synthetic"
    batch: int = Field(8, gt=0)
    steps: int = Field(20, gt=0, description="training steps in all, warm-up included")
    warmup: int = Field(5, ge=0, description="first steps left out of the timing")
    precision: Precision = "fp32"
    attention: str = "auto"
    compile: bool = False
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    loss_window: int = Field(5, gt=0, description="final loss = mean over the last this many steps")
    flop_batch: int = Field(1, gt=0, description="batch of the one counted forward+backward")
    probe: bool = False
    probe_data: DataSpec | None = None
    probe_options: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float | None = Field(None, gt=0, description="kill the entry's process after this long")
    seed: int = 0

    @field_validator("attention")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        if v not in BACKENDS:
            raise ValueError(f"unknown attention backend {v!r}; choose one of {', '.join(BACKENDS)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> BenchEntry:
        if self.warmup >= self.steps:
            raise ValueError(f"warmup ({self.warmup}) must be smaller than steps ({self.steps})")
        if not self.name:
            self.name = self.preset if self.kind == "maeflow" else f"{self.kind}:{self.preset}"
        return self

    @property
    def probe_source(self) -> DataSpec | None:
        """The labelled dataset probes use: ``probe_data``, else the training dataset."""
        if self.probe_data is not None:
            return self.probe_data
        return self.data if isinstance(self.data, DataSpec) else None


class BenchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: Literal["auto", "cpu", "cuda"] = "auto"
    isolation: Literal["subprocess", "inprocess"] = "subprocess"
    threads: int | None = Field(None, gt=0, description="torch CPU threads per entry (default: torch's)")
    defaults: dict[str, Any] = Field(default_factory=dict)
    entries: list[BenchEntry]

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"a bench config is a mapping with an 'entries' list, got {type(data).__name__}")
        data = dict(data)
        defaults = data.get("defaults") or {}
        entries = data.get("entries")
        if not isinstance(entries, list) or not entries:
            raise ValueError("a bench config needs a non-empty 'entries' list")
        if not isinstance(defaults, dict):
            raise ValueError("'defaults' must be a mapping of entry fields")
        merged = []
        for e in entries:
            if not isinstance(e, dict):
                raise ValueError(f"each entry is a mapping, got {e!r}")
            m = copy.deepcopy(defaults)
            for k, v in e.items():
                # nested mappings (optimizer, probe_options) merge one level deep
                if isinstance(v, dict) and isinstance(m.get(k), dict) and k != "args":
                    m[k] = {**m[k], **v}
                else:
                    m[k] = v
            merged.append(m)
        data["entries"] = merged
        return data

    @model_validator(mode="after")
    def _unique_names(self) -> BenchConfig:
        seen: set[str] = set()
        for e in self.entries:
            if e.name in seen:
                raise ValueError(f"two entries are named {e.name!r}; give them distinct 'name's")
            seen.add(e.name)
        return self


def _entry_name(e: Any) -> str:
    """An entry's name as :class:`BenchEntry` will give it (``name``, else from kind and preset)."""
    if not isinstance(e, dict):
        return ""
    if e.get("name"):
        return str(e["name"])
    kind = e.get("kind", "maeflow")
    return str(e.get("preset", "")) if kind == "maeflow" else f"{kind}:{e.get('preset', '')}"


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Command-line ``key=value`` overrides on the raw config mapping (a new copy).

    Top-level keys (``device``, ``isolation``, ``threads``, ``defaults.<field>``) set themselves;
    an entry field (``steps=3``, ``optimizer.lr=1e-3``) applies to every entry (and the
    defaults); ``entries.<name>.<field>=v`` applies to one entry. Keys are checked as in the
    run config (:func:`maeflow._configio.set_dotted`).
    """
    raw = copy.deepcopy(raw)
    entry_fields = set(BenchEntry.model_fields)
    top_fields = set(BenchConfig.model_fields) - {"entries"}
    for key, value in overrides.items():
        head = key.split(".", 1)[0]
        if head == "defaults":
            rest = key.split(".", 1)[1] if "." in key else ""
            if not rest:
                raw["defaults"] = value
            else:
                set_dotted(raw.setdefault("defaults", {}), rest, value, BenchEntry, ("defaults",), key)
        elif head in top_fields:
            set_dotted(raw, key, value, BenchConfig)
        elif head == "entries":
            parts = key.split(".", 2)
            if len(parts) < 3:
                raise ValueError(f"override {key!r}: use entries.<name>.<field>=value")
            target = [e for e in raw.get("entries", []) if _entry_name(e) == parts[1]]
            if not target:
                names = [_entry_name(e) for e in raw.get("entries", [])]
                raise ValueError(f"override {key!r}: no entry named {parts[1]!r}; entries are {', '.join(names)}")
            set_dotted(target[0], parts[2], value, BenchEntry, ("entries", parts[1]), key)
        elif head in entry_fields:
            set_dotted(raw.setdefault("defaults", {}), key, value, BenchEntry, (), key)
            for e in raw.get("entries", []):
                if isinstance(e, dict) and head in e:
                    set_dotted(e, key, value, BenchEntry, (), key)
        else:
            raise ValueError(f"override {key!r}: " + unknown_name_message(
                "bench setting", head, entry_fields | top_fields | {"entries"}))  # fmt: skip
    return raw


def check_config_keys(raw: dict[str, Any]) -> None:
    """Unknown keys at the top, in ``defaults`` and in each entry fail naming the valid ones."""
    check_keys(raw, BenchConfig)
    check_keys(raw.get("defaults"), BenchEntry, ("defaults",))
    entries = raw.get("entries")
    for e in entries if isinstance(entries, list) else []:
        check_keys(e, BenchEntry, ("entries", _entry_name(e)))


def parse_config(raw: dict[str, Any], source: str = "config") -> BenchConfig:
    """Schema check only (no registry look-ups): unknown keys and bad values raise one
    ``ValueError`` beginning with ``source``; entries are named as in overrides
    (``entries.<name>.steps``)."""
    names = [_entry_name(e) for e in raw.get("entries", [])] if isinstance(raw.get("entries"), list) else []

    def where(loc: tuple) -> tuple:
        if len(loc) > 1 and loc[0] == "entries" and isinstance(loc[1], int) and loc[1] < len(names):
            return ("entries", names[loc[1]] or loc[1], *loc[2:])
        return loc

    try:
        if isinstance(raw, dict):
            check_config_keys(raw)
        return validate(BenchConfig, raw, where)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def load_config(
    path: str | Path, overrides: dict[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> tuple[BenchConfig, dict[str, Any]]:
    """Read a YAML bench config, apply overrides, resolve ``${ENV}``, check the schema.
    Returns ``(config, raw)``, ``raw`` the resolved mapping (what results.json records)."""
    raw = read_yaml(path, "bench config")
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a bench config is a mapping with an 'entries' list")
    try:
        check_config_keys(raw)
        raw = apply_overrides(raw, overrides or {})
        raw = interpolate_env(raw, os.environ if env is None else env)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return parse_config(raw, str(path)), raw
