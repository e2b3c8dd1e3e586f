"""Run configurations as validated data.

A config is a YAML file with five sections (``model``, ``data``, ``train``, ``eval``, ``run``)
validated by the pydantic models below; every section rejects unknown keys. Components are
named by registry name (``model.name``, ``data.name``), never by import path::

    cfg = load_config("configs/<modality>/demo.yaml", ["train.epochs=5", "run.output_dir=runs/x"])
    cfg.train.base_lr            # 1.5e-4
    cfg.to_dict()                # the resolved config as plain data (saved with every run)

Overrides are ``dotted.key=value`` with YAML scalar values (``3``, ``0.5``, ``true``,
``[0.9, 0.95]``). Under ``model.args``, ``data.options`` and ``eval.options`` any key may be set
(those go to the registered builder, which validates them itself).

String values may reference environment variables as ``${NAME}`` (or ``${NAME:-default}``);
an unset variable without default fails naming the key and the variable. The grammar is
:mod:`maeflow._configio`'s, shared with the bench config; docs/configs.md describes every key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from maeflow._configio import (  # noqa: F401  (check_keys, interpolate_env, validate: the grammar's names, re-exported)
    check_keys,
    config_from_data,
    interpolate_env,
    load_config_file,
    plain,
    set_dotted,
    validate,
)


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
    # fine-tune on this fraction of each class's training labels (the low-label protocol; the
    # same items for the pretrained encoder and its random-init twin); the probes use all labels
    finetune_label_fraction: float = Field(1.0, gt=0, le=1)
    # layer-wise lr decay of fine-tuning: the head keeps the lr, each layer below it one more
    # factor, down to the tokenizer (the MAE recipe's 0.75); None: one lr for the whole encoder
    finetune_layer_decay: float | None = Field(None, gt=0, le=1)

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
    # a resume whose config changes the model or the data order is refused unless "allow"
    resume_mismatch: Literal["refuse", "allow"] = "refuse"
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
        return plain(self.model_dump(mode="json"))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def apply_dotted(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Set ``{"train.epochs": 5}``-style overrides into nested ``data`` (in place, returned),
    each key checked against the config's sections."""
    for dotted, value in overrides.items():
        set_dotted(data, dotted, value, Config)
    return data


def config_from_dict(
    data: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Validate nested ``data`` (+ dotted ``overrides``) into a :class:`Config`."""
    return config_from_data(Config, data, overrides, env)


def load_config(
    path: str | os.PathLike,
    overrides: list[str] | Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Read a YAML config, apply ``key.sub=value`` overrides, resolve ``${ENV}`` and validate."""
    return load_config_file(Config, path, overrides, env)


def check_registered(cfg: Config) -> None:
    """The named model and datasets exist in the registries (unknown → ValueError with names)."""
    from maeflow.plugins import registry

    registry("model").get(cfg.model.name)
    registry("dataset").get(cfg.data.name)
    if cfg.eval.dataset:
        registry("dataset").get(cfg.eval.dataset)
