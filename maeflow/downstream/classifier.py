"""The downstream classifier: a pretrained MAE's tokenizer and encoder, a pooling rule, a norm
and a linear head, as MAE's fine-tuning and linear probing build it.

    encoder, info = load_encoder(cfg.model, drop_path=0.1)     # a run dir, checkpoint or foreign file
    clf = Classifier(encoder, num_classes=10, pool="avg", norm="fc_norm")
    logits = clf(inputs)                                         # (B, C)

Pooling ``avg`` with ``fc_norm`` replaces the encoder's final norm by a LayerNorm after the
token mean (MAE's fine-tuning, timm's ``global_pool="avg"``); ``cls`` reads the cls token;
``cls_max`` concatenates it with the token-wise max (Point-MAE's head input); an encoder pretrained
without a cls token gets a new one, as Point-MAE fine-tunes. ``batchnorm`` is
``BatchNorm1d`` without affine parameters (MAE's linear probe), which exports folded into the
head. The decoder and mask token are not part of the classifier.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from maeflow.checkpoint import FORMAT_TAG, load_checkpoint, model_from_checkpoint, read_file

log = logging.getLogger(__name__)

KIND = "classifier"  # the "kind" of a classifier checkpoint (pretraining checkpoints have none)


class Classifier(nn.Module):
    """``head(dropout(norm(pool(encoder(tokenizer(x))))))`` → logits (B, C).

    :param backbone: a ``MaskedAutoencoder`` (its ``tokenizer`` and ``encoder`` are taken over;
        the decoder is left behind).
    """

    is_classifier = True

    def __init__(self, backbone: nn.Module, num_classes: int, pool: str = "avg", norm: str = "fc_norm",
                 dropout: float = 0.0, init_std: float | None = None):  # fmt: skip
        super().__init__()
        self.tokenizer = backbone.tokenizer
        self.encoder = backbone.encoder
        self.modality = getattr(backbone, "modality", None)
        self.model_name = getattr(backbone, "model_name", None)
        self.model_args = dict(getattr(backbone, "model_args", {}) or {})
        self.config = getattr(backbone, "config", None)  # the preset's dataclass (sizes, for exports)
        self.pool, self.norm_kind, self.num_classes = pool, norm, int(num_classes)
        self.dropout_rate = float(dropout)
        n, dim = self.encoder.num_prefix_tokens, self.encoder.embed_dim
        if pool in ("cls", "cls_max") and not n:
            # Point-MAE fine-tunes with a new cls token in front of a pretrained encoder that had none
            self.encoder.cls_token = nn.Parameter(nn.init.trunc_normal_(torch.zeros(1, 1, dim), std=0.02))
            log.info("the encoder has no cls token: a new one is learned (head.pool=%s)", pool)
        width = 2 * dim if pool == "cls_max" else dim
        if norm == "fc_norm":
            eps = getattr(self.encoder.norm, "eps", 1e-6)
            self.encoder.norm = nn.Identity()  # fc_norm takes the final norm's place (MAE, timm)
            self.head_norm: nn.Module = nn.LayerNorm(width, eps=eps)
        elif norm == "batchnorm":
            self.head_norm = nn.BatchNorm1d(width, affine=False, eps=1e-6)
        elif norm == "none":
            self.head_norm = nn.Identity()
        else:
            raise ValueError(f"head.norm must be fc_norm, batchnorm or none, got {norm!r}")
        self.head_drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, self.num_classes)
        if init_std is not None:
            nn.init.trunc_normal_(self.head.weight, std=init_std)
            nn.init.zeros_(self.head.bias)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """Pooled (and normed) features (B, D) or (B, 2D) for ``cls_max``: what the head reads."""
        x = self.encoder(self.tokenizer(inputs), None)  # (B, [1+]L, D)
        n = self.encoder.num_prefix_tokens
        if self.pool == "avg":
            f = x[:, n:].mean(dim=1)
        elif self.pool == "max":
            f = x[:, n:].amax(dim=1)
        elif self.pool == "cls":
            f = x[:, 0]
        else:  # cls_max
            f = torch.cat([x[:, 0], x[:, n:].amax(dim=1)], dim=-1)
        return self.head_norm(f)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_drop(self.features(inputs)))  # (B, C)

    def freeze_encoder(self) -> None:
        """Linear probing: only the head (and a learnable head norm) trains."""
        for p in (*self.tokenizer.parameters(), *self.encoder.parameters()):
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if mode and not any(p.requires_grad for p in self.encoder.parameters()):
            self.tokenizer.eval()  # a frozen encoder runs as at inference (no stochastic depth)
            self.encoder.eval()
        return self

    def no_weight_decay_names(self) -> set[str]:
        """Biases, norms, tokens and positional tables (the MAE rule), the head's bias."""
        return {n for n, p in self.named_parameters() if p.ndim <= 1 or n.endswith(("cls_token", "pos_embed"))}

    def folded_head(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's ``(weight (C, D), bias (C,))`` with a ``batchnorm`` head norm folded in
        (``W / σ``, ``b − W μ / σ``), for layouts that have no such norm."""
        w, b = self.head.weight.detach(), self.head.bias.detach()
        if isinstance(self.head_norm, nn.BatchNorm1d):
            scale = (self.head_norm.running_var + self.head_norm.eps).rsqrt()  # (D,)
            w, b = w * scale, b - (w * scale) @ self.head_norm.running_mean
        return w.clone(), b.clone()

    def spec(self) -> dict[str, Any]:
        """What :func:`classifier_from_checkpoint` needs besides the backbone preset."""
        return {"num_classes": self.num_classes, "pool": self.pool, "norm": self.norm_kind,
                "dropout": self.dropout_rate}  # fmt: skip


def classifier_payload(model: Classifier, with_weights: bool = True) -> dict[str, Any]:
    """maeflow's checkpoint content for a classifier (``kind: classifier``); without weights the
    header only (a training checkpoint adds its own full state)."""
    out = {"format": FORMAT_TAG, "kind": KIND, "model_name": model.model_name, "model_args": dict(model.model_args),
           "classifier": model.spec()}  # fmt: skip
    if with_weights:
        out["model"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return out


def is_classifier_checkpoint(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("format") == FORMAT_TAG and raw.get("kind") == KIND


def classifier_from_checkpoint(source: str | os.PathLike | dict[str, Any]) -> Classifier:
    """Rebuild a classifier from its checkpoint (preset, arguments, head spec) and load it strictly."""
    from maeflow.factory import create_model

    raw = read_file(source) if isinstance(source, (str, os.PathLike)) else source
    if not is_classifier_checkpoint(raw):
        raise ValueError("not a maeflow classifier checkpoint (written by maeflow finetune / linprobe)")
    backbone = create_model(raw["model_name"], **dict(raw.get("model_args") or {}))
    model = Classifier(backbone, **raw["classifier"])
    model.load_state_dict(raw["model"])
    return model.eval()


def resolve_source(path: str | os.PathLike) -> Path:
    """A checkpoint file as given, or the latest checkpoint of a run directory (as ``maeflow eval``)."""
    from maeflow.cli.eval import resolve_checkpoint

    return resolve_checkpoint(path)


def set_drop_path(encoder: nn.Module, rate: float) -> None:
    """Stochastic depth on the encoder's blocks, rising linearly from 0 to ``rate`` (timm's ramp);
    drop-path layers hold no weights, so a pretrained encoder takes them as it is."""
    from maeflow.nn.blocks import DropPath, drop_path_rates

    for block, r in zip(encoder.blocks, drop_path_rates(rate, len(encoder.blocks)), strict=True):
        if hasattr(block, "drop_path"):
            block.drop_path = DropPath(r) if r > 0 else nn.Identity()


def load_encoder(source: Any, drop_path: float = 0.0) -> tuple[nn.Module, str]:
    """The MAE whose encoder is fine-tuned, from a :class:`~maeflow.downstream.config.SourceConfig`;
    returns ``(model, description)``. ``drop_path``: the encoder's stochastic depth (:func:`set_drop_path`)."""
    model, what = _load(source)
    if drop_path:
        set_drop_path(model.encoder, drop_path)
    return model, what


def _load(source: Any) -> tuple[nn.Module, str]:
    from maeflow.factory import create_model

    overrides = dict(source.args)
    if source.source is None:
        return create_model(source.name, **overrides), f"{source.name} (random init)"
    path = resolve_source(source.source)
    raw = read_file(path)
    if is_classifier_checkpoint(raw):
        raise ValueError(f"{path} is a classifier (maeflow finetune output); start from a pretraining checkpoint")
    if isinstance(raw, dict) and raw.get("format") == FORMAT_TAG and raw.get("model_name") and not source.name:
        model, result = model_from_checkpoint(raw, **overrides)
    else:
        if not source.name:
            raise ValueError(f"{path} does not name its model: set model.name to the preset it holds "
                             "(e.g. mae_vit_base_patch16)")  # fmt: skip
        model = create_model(source.name, **overrides)
        result = load_checkpoint(model, raw, format=source.format)
    enc_missing = [k for k in result.missing if k.startswith(("tokenizer.", "encoder."))]
    if enc_missing:
        log.warning("the source did not provide %d encoder parameters (left at initialization): %s",
                    len(enc_missing), ", ".join(enc_missing[:6]))  # fmt: skip
    return model, f"{path} ({result.format} layout)"
