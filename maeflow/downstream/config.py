"""Downstream configs (``maeflow finetune`` / ``maeflow linprobe``) as validated data.

The grammar is the run config's (:mod:`maeflow._configio`: ``key=value`` overrides, ``${ENV}``
references, unknown keys named with the valid ones); the sections are these::

    task: finetune | linprobe
    model:   where the encoder comes from (a run dir, a checkpoint, a foreign file + preset, or none)
    head:    pooling, the norm before the head, head init, stochastic depth of the encoder
    data:    a registered labelled dataset, its splits and loader
    augment: RandAugment, random erasing (timm), mixup / cutmix (timm), SpecAugment (torchaudio)
    train:   optimizer (AdamW with layer decay, LARS, or the eval protocol's probe), schedule, loss, EMA
    run:     output folder, seed, resume, device, threads

    cfg = load_downstream_config("configs/image/finetune_demo.yaml", ["train.epochs=2"])
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from maeflow._configio import config_from_data, load_config_file, plain
from maeflow.config import _Section


class SourceConfig(_Section):
    """The encoder: ``source`` is a maeflow run directory or checkpoint (it names its preset),
    or a foreign checkpoint (official MAE, Hugging Face, VideoMAE, Audio-MAE, Point-MAE) read
    into preset ``name``; no ``source``: ``name`` freshly initialized (the random-init baseline)."""

    source: str | None = None
    name: str | None = None
    format: str = "auto"  # the layout of a foreign source (auto: detected)
    args: dict[str, Any] = Field(default_factory=dict)  # preset overrides (e.g. img_size)

    @model_validator(mode="after")
    def _something(self) -> SourceConfig:
        if self.source is None and self.name is None:
            raise ValueError("set model.source (a run dir or checkpoint) or model.name (a preset)")
        return self


class HeadConfig(_Section):
    """What the classifier reads from the encoder and the layer in front of its linear head."""

    # avg: token mean (MAE fine-tuning; replaces the encoder's final norm by fc_norm);
    # cls: the cls token after the final norm (MAE linear probe); cls_max: cls ++ token max (Point-MAE)
    pool: Literal["avg", "cls", "max", "cls_max"] = "avg"
    norm: Literal["fc_norm", "batchnorm", "none"] = "fc_norm"  # batchnorm: BatchNorm1d without affine
    init_std: float | None = Field(None, gt=0)  # trunc-normal head weights (MAE: 2e-5; probe 0.01)
    dropout: float = Field(0.0, ge=0, lt=1)  # before the head
    drop_path: float = Field(0.0, ge=0, lt=1)  # the encoder's stochastic depth while fine-tuning


class DownstreamData(_Section):
    """A registered labelled dataset; the train split takes ``options`` plus ``train_options``,
    the held-out split ``options`` plus ``test_options`` (``augment: false`` by default)."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    train_options: dict[str, Any] = Field(default_factory=dict)
    test_options: dict[str, Any] = Field(default_factory=dict)
    train_split: str = "train"
    test_split: str = "test"
    batch_size: int = Field(64, gt=0)  # summed over processes
    num_workers: int = Field(0, ge=0)
    num_classes: int | None = Field(None, gt=1)  # default: the dataset's, else max label + 1


class AugmentConfig(_Section):
    """Training-time augmentation on top of the dataset's own (crop/flip, clip window, ...)."""

    rand_augment: str | None = None  # timm config string, e.g. rand-m9-mstd0.5-inc1 (MAE: RandAugment(9, 0.5))
    random_erasing: float = Field(0.0, ge=0, le=1)  # timm RandomErasing probability (pixel mode)
    mixup: float = Field(0.0, ge=0)  # timm Mixup alpha (0: off)
    cutmix: float = Field(0.0, ge=0)  # timm CutMix alpha (0: off)
    mixup_prob: float = Field(1.0, ge=0, le=1)
    switch_prob: float = Field(0.5, ge=0, le=1)
    freq_mask: int = Field(0, ge=0)  # SpecAugment frequency mask width (torchaudio), on (1, T, F) items
    time_mask: int = Field(0, ge=0)  # SpecAugment time mask width


class DownstreamTrain(_Section):
    """Optimization. The peak lr is ``lr``, else ``blr × batch / 256`` (MAE's rule)."""

    epochs: int = Field(10, gt=0)
    max_steps: int | None = Field(None, gt=0)
    # adamw: AdamW (layer decay optional); lars: timm's LARS (MAE linear probe);
    # protocol: frozen features + maeflow eval's linear probe (maeflow.eval.linear_probe), linprobe only
    optimizer: Literal["adamw", "lars", "protocol"] = "adamw"
    blr: float = Field(5e-4, gt=0)
    lr: float | None = Field(None, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = Field(0.9, ge=0, lt=1)  # LARS
    layer_decay: float | None = Field(None, gt=0, le=1)
    warmup_epochs: float = Field(5.0, ge=0)
    min_lr: float = Field(0.0, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    loss: Literal["ce", "bce"] = "ce"  # bce: multi-label (AudioSet-style) targets
    freeze_encoder: bool = False  # linear probe: only the head (and its norm) learns
    clip_grad: float | None = Field(None, gt=0)
    ema: float | None = Field(None, gt=0, lt=1)  # decay of a timm ModelEmaV3 copy, evaluated beside the model
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    distributed: Literal["ddp", "fsdp"] = "ddp"
    log_every: int = Field(20, gt=0)
    ckpt_every_epochs: int = Field(1, ge=0)
    keep_last: int = Field(2, gt=0)
    progress: bool = True


class DownstreamRun(_Section):
    output_dir: str = "runs/finetune"
    seed: int = 0
    resume: str = "auto"  # auto | never | <checkpoint path>
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, gt=0)


# MAE's linear probe (He et al., CVPR 2022, Table 10): the cls token, BatchNorm without affine in
# front of the head (trunc-normal 0.01), LARS at base lr 0.1, no weight decay, 90 epochs, 10 warm-up
LINPROBE_DEFAULTS: dict[str, dict[str, Any]] = {
    "head": {"pool": "cls", "norm": "batchnorm", "init_std": 0.01},
    "train": {"optimizer": "lars", "blr": 0.1, "weight_decay": 0.0, "epochs": 90, "warmup_epochs": 10,
              "label_smoothing": 0.0},
}


class DownstreamConfig(_Section):
    """A fine-tuning or linear-probing run. See docs/finetune.md."""

    task: Literal["finetune", "linprobe"] = "finetune"
    model: SourceConfig
    head: HeadConfig = Field(default_factory=HeadConfig)
    data: DownstreamData
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    train: DownstreamTrain = Field(default_factory=DownstreamTrain)
    run: DownstreamRun = Field(default_factory=DownstreamRun)

    @model_validator(mode="before")
    @classmethod
    def _linprobe_defaults(cls, data: Any) -> Any:
        """``task: linprobe`` defaults to MAE's probe (:data:`LINPROBE_DEFAULTS`) where the config is silent."""
        if not isinstance(data, dict) or data.get("task") != "linprobe":
            return data
        data = dict(data)
        for section, defaults in LINPROBE_DEFAULTS.items():
            given = data.get(section) if isinstance(data.get(section), dict) else {}
            data[section] = {**defaults, **given}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> DownstreamConfig:
        if self.train.optimizer == "protocol" and self.task != "linprobe":
            raise ValueError("train.optimizer=protocol (maeflow eval's linear probe) is for task: linprobe")
        if (self.augment.mixup or self.augment.cutmix) and self.train.loss == "bce" and self.train.label_smoothing:
            raise ValueError("mixup with bce takes no label smoothing (set train.label_smoothing=0)")
        return self

    def to_dict(self) -> dict[str, Any]:
        return plain(self.model_dump(mode="json"))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def downstream_config_from_dict(data: Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
                                env: Mapping[str, str] | None = None) -> DownstreamConfig:  # fmt: skip
    """Validate nested ``data`` (+ dotted ``overrides``) into a :class:`DownstreamConfig`."""
    return config_from_data(DownstreamConfig, data, overrides, env)


def load_downstream_config(path: str | os.PathLike, overrides: list[str] | Mapping[str, Any] | None = None,
                           env: Mapping[str, str] | None = None) -> DownstreamConfig:  # fmt: skip
    """Read a downstream YAML config, apply ``key=value`` overrides, resolve ``${ENV}``, validate."""
    return load_config_file(DownstreamConfig, path, overrides, env)

