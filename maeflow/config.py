"""Run configurations as validated data.

A config is a YAML file with five sections (``model``, ``data``, ``train``, ``eval``, ``run``)
validated by the pydantic models below; every section rejects unknown keys. Components are
named by registry name (``model.name``, ``data.name``), never by import path::

    cfg = load_config("configs/image/demo.yaml", ["train.epochs=5", "run.output_dir=runs/x"])
    cfg.train.base_lr            # 1.5e-4
    cfg.to_dict()                # the resolved config as plain data (saved with every run)

Overrides are ``dotted.key=value`` with YAML scalar values (``3``, ``0.5``, ``true``,
``[0.9, 0.95]``). Under ``model.args``, ``data.options`` and ``eval.options`` any key may be set
(those go to the registered builder, which validates them itself).

String values may reference environment variables as ``${NAME}`` (or ``${NAME:-default}``);
an unset variable without default fails naming the key and the variable. docs/configs.md
describes every key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from maeflow._errors import unknown_name_message


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    """Which registered model preset to build, and overrides of its arguments."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class DataConfig(_Section):
    """The pretraining dataset (a registered dataset builder) and its loader."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    split: str = "train"
    batch_size: int = Field(64, gt=0)  # per micro-step, summed over all processes
    num_workers: int = Field(4, ge=0)
    pin_memory: bool | Literal["auto"] = "auto"
    persistent_workers: bool = True
    prefetch_factor: int | None = Field(None, gt=0)
    shuffle: bool = True
    # finish batches on the accelerator when the dataset offers a device pipeline (image_folder:
    # JPEG decode + augmentation on the GPU); auto: on CUDA only, true: required, false: never
    device_pipeline: bool | Literal["auto"] = "auto"


class TrainConfig(_Section):
    """Optimization, precision, checkpointing and logging."""

    epochs: int = Field(1, gt=0)
    max_steps: int | None = Field(None, gt=0)
    base_lr: float = Field(1.5e-4, gt=0)
    lr: float | None = Field(None, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0)
    warmup_epochs: float = Field(0.0, ge=0)
    min_lr: float = Field(0.0, ge=0)
    accum_iter: int | None = Field(None, gt=0)
    effective_batch_size: int | None = Field(None, gt=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    clip_grad: float | None = Field(None, gt=0)
    compile: bool = False
    fused_optimizer: bool | Literal["auto"] = "auto"
    attention: Literal["auto", "xformers", "sdpa", "math"] | None = None
    distributed: Literal["ddp", "fsdp"] = "ddp"
    mask_seed: Literal["sample", "batch"] = "sample"
    nonfinite: Literal["stop", "skip"] = "stop"
    max_skipped_steps: int = Field(20, ge=0)
    log_every: int = Field(20, gt=0)
    ckpt_every_epochs: int = Field(1, ge=0)
    ckpt_every_steps: int | None = Field(None, gt=0)
    keep_last: int = Field(2, gt=0)
    progress: bool = True
    tensorboard: bool = True
    reconstruction: bool = True

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in v):
            raise ValueError(f"betas must be in [0, 1), got {list(v)}")
        return v

    @model_validator(mode="after")
    def _one_batch_rule(self) -> TrainConfig:
        if self.accum_iter is not None and self.effective_batch_size is not None:
            raise ValueError("set either train.accum_iter or train.effective_batch_size, not both")
        return self


class EvalConfig(_Section):
    """Frozen-feature probes (kNN and linear) of the encoder during and after training, and
    optionally end-to-end fine-tuning after training (``finetune_epochs`` > 0, final only)."""

    every_epochs: int = Field(0, ge=0)  # 0: no periodic evaluation
    final: bool = False
    dataset: str | None = None  # defaults to data.name
    options: dict[str, Any] = Field(default_factory=dict)
    train_split: str = "train"
    test_split: str = "test"
    batch_size: int = Field(256, gt=0)
    knn_k: int = Field(20, gt=0)
    linear_epochs: int = Field(100, gt=0)
    compare_random_init: bool = False
    # end-to-end fine-tuning (maeflow.eval.finetune_encoder) at the final evaluation; 0: off
    finetune_epochs: int = Field(0, ge=0)
    finetune_lr: float = Field(1e-3, gt=0)  # AdamW peak lr (1 warm-up epoch, then cosine)
    finetune_batch_size: int = Field(64, gt=0)

    @model_validator(mode="after")
    def _finetune_needs_final(self) -> EvalConfig:
        if self.finetune_epochs and not self.final:
            raise ValueError("eval.finetune_epochs runs at the final evaluation only: set eval.final=true too")
        return self


class RunConfig(_Section):
    """Where results go, seeding, resumption and the device."""

    output_dir: str = "runs/default"
    seed: int = 0
    resume: str = "auto"  # auto | never | <checkpoint path>
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, gt=0)  # CPU threads for PyTorch ops (None: PyTorch's default)


class Config(_Section):
    """A whole run. See docs/configs.md."""

    model: ModelConfig
    data: DataConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, not tuples): what ``config.yaml`` and checkpoints hold."""
        return _plain(self.model_dump(mode="json"))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# keys under which any name is allowed (they go to registered builders)
_FREE_KEYS = {("model", "args"), ("data", "options"), ("eval", "options")}


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _section_model(path: tuple[str, ...]) -> type[BaseModel] | None:
    """The pydantic model at a dotted path, or None under a free-form mapping."""
    model: type[BaseModel] = Config
    for i, key in enumerate(path):
        if path[: i + 1] in _FREE_KEYS:
            return None
        field = model.model_fields.get(key)
        ann = getattr(field, "annotation", None)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


def _check_keys(data: Any, path: tuple[str, ...] = ()) -> None:
    """Unknown keys fail naming the key, the valid keys at that level and a close match."""
    if not isinstance(data, Mapping):
        return
    model = _section_model(path)
    if model is None:
        return
    valid = list(model.model_fields)
    for key, value in data.items():
        if key not in model.model_fields:
            where = ".".join(path) or "top level"
            full = ".".join((*path, str(key)))
            raise ValueError(f"config key {full!r} ({where}): " + unknown_name_message("key", key, valid))
        _check_keys(value, (*path, key))


def apply_dotted(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Set ``{"train.epochs": 5}``-style overrides into nested ``data`` (in place, returned)."""
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        if not all(parts):
            raise ValueError(f"override key {dotted!r} is not a dotted key like train.epochs")
        # check the path as we go so the message names the first wrong part
        node = data
        for i, part in enumerate(parts):
            model = _section_model(tuple(parts[:i]))
            if model is not None and part not in model.model_fields:
                where = ".".join(parts[:i]) or "top level"
                raise ValueError(
                    f"override {dotted!r} ({where}): " + unknown_name_message("key", part, list(model.model_fields))
                )
            if i == len(parts) - 1:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return data


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate_env(data: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in strings with environment values."""
    if isinstance(data, dict):
        return {k: interpolate_env(v, env, f"{path}.{k}" if path else str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate_env(v, env, f"{path}[{i}]") for i, v in enumerate(data)]
    if not isinstance(data, str):
        return data

    def sub(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ValueError(
            f"config key {path!r} uses ${{{name}}}, but the environment variable {name} is not set: "
            f"export {name}=... or override it, e.g. {path}=/your/path"
        )

    return _ENV.sub(sub, data)


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        lines.append(f"{loc}: {err['msg']}")
    return "invalid config: " + "; ".join(lines)


def config_from_dict(
    data: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Validate nested ``data`` (+ dotted ``overrides``) into a :class:`Config`."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a config must be a mapping of sections, got {type(data).__name__}")
    merged = _plain(dict(data))
    _check_keys(merged)
    apply_dotted(merged, dict(overrides or {}))
    merged = interpolate_env(merged, os.environ if env is None else env)
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ValueError(_format_validation_error(exc)) from None


def parse_override_list(items: list[str]) -> dict[str, Any]:
    """``["train.epochs=5", ...]`` → ``{"train.epochs": 5}`` (values read as YAML scalars)."""
    from maeflow.cli.common import parse_overrides

    return parse_overrides(items)


def load_config(
    path: str | os.PathLike,
    overrides: list[str] | Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Read a YAML config, apply ``key.sub=value`` overrides, resolve ``${ENV}`` and validate."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"cannot parse {path}: {exc}") from None
    if isinstance(overrides, list):
        overrides = parse_override_list(overrides)
    try:
        return config_from_dict(data, overrides, env)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def check_registered(cfg: Config) -> None:
    """The named model and datasets exist in the registries (unknown → ValueError with names)."""
    from maeflow.plugins import registry

    registry("model").get(cfg.model.name)
    registry("dataset").get(cfg.data.name)
    if cfg.eval.dataset:
        registry("dataset").get(cfg.eval.dataset)
