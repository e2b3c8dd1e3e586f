"""Image classifiers of ``maeflow finetune`` / ``linprobe`` (:class:`maeflow.downstream.Classifier`)
in timm's ``VisionTransformer`` and Hugging Face's ``ViTForImageClassification`` layouts, with
their heads: the ``timm`` and ``hf`` checkpoint formats call these for a classifier.

    model = timm.create_model("vit_base_patch16_224", **timm_kwargs(clf))   # then load_state_dict
    hf = ViTForImageClassification(hf_config(clf))

A ``batchnorm`` head norm (MAE's linear probe) is folded into the head; ``fc_norm`` is timm's
``fc_norm`` (and, for a cls-token classifier, Hugging Face's final ``layernorm``, which then acts on
the cls token alone as fc_norm does). Hugging Face's classifier reads the cls token only: a
token-mean classifier (MAE's fine-tuning default) exports to timm, not to Hugging Face.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from maeflow import rename_prefixes

_TIMM_POOL = {"avg": "avg", "cls": "token", "max": "max"}


def _cfg(model) -> Any:
    cfg = getattr(model, "config", None)
    if cfg is None:
        raise ValueError("the classifier does not carry its preset's config (rebuild it with maeflow)")
    return cfg


def timm_kwargs(model) -> dict[str, Any]:
    """Arguments for ``timm.create_model("vit_*_patch16_224", **kwargs)`` (or ``VisionTransformer``)."""
    if model.pool not in _TIMM_POOL:
        raise ValueError(f"timm's ViT has no {model.pool!r} pooling; export classifiers with pool avg, cls or max")
    c = _cfg(model)
    return {"img_size": c.img_size, "patch_size": c.patch_size, "in_chans": c.in_chans, "embed_dim": c.embed_dim,
            "depth": c.depth, "num_heads": c.num_heads, "mlp_ratio": c.mlp_ratio, "qkv_bias": c.qkv_bias,
            "num_classes": model.num_classes, "global_pool": _TIMM_POOL[model.pool],
            "fc_norm": model.norm_kind == "fc_norm", "class_token": True}  # fmt: skip


def hf_config(model):
    """A ``transformers.ViTConfig`` for ``ViTForImageClassification`` (cls-token classifiers)."""
    from transformers import ViTConfig

    if model.pool != "cls":
        raise ValueError(f"Hugging Face ViTForImageClassification classifies the cls token; this classifier pools "
                         f"{model.pool!r}: export it to timm (--to timm), or fine-tune with head.pool=cls")  # fmt: skip
    c = _cfg(model)
    size = c.img_size if isinstance(c.img_size, int) else c.img_size[0]
    return ViTConfig(hidden_size=c.embed_dim, num_hidden_layers=c.depth, num_attention_heads=c.num_heads,
                     intermediate_size=int(c.embed_dim * c.mlp_ratio), image_size=size, patch_size=c.patch_size,
                     num_channels=c.in_chans, num_labels=model.num_classes, layer_norm_eps=c.norm_eps,
                     qkv_bias=c.qkv_bias, hidden_act="gelu")  # fmt: skip


def _head(model, sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The backbone's entries, and the head with a batchnorm folded in."""
    backbone = {k: v for k, v in sd.items() if k.startswith(("tokenizer.", "encoder."))}
    return backbone, model.folded_head()


def to_timm(sd: dict[str, torch.Tensor], model, mae_rules, cls_table) -> dict[str, torch.Tensor]:
    timm_kwargs(model)  # refuses what timm cannot hold
    backbone, (w, b) = _head(model, sd)
    out = rename_prefixes(backbone, mae_rules)
    out["pos_embed"] = cls_table(model.encoder.pos_embed.table)
    if isinstance(model.head_norm, nn.LayerNorm):
        out["fc_norm.weight"], out["fc_norm.bias"] = sd["head_norm.weight"], sd["head_norm.bias"]
    out["head.weight"], out["head.bias"] = w, b
    return out


def to_hf(sd: dict[str, torch.Tensor], model, hf_format) -> dict[str, torch.Tensor]:
    hf_config(model)  # refuses token-mean classifiers
    backbone, (w, b) = _head(model, sd)
    shim = SimpleNamespace(encoder=model.encoder, decoder=SimpleNamespace(pos_embed=model.encoder.pos_embed))
    out = hf_format.from_maeflow(backbone, shim)
    out.pop("decoder.decoder_pos_embed", None)
    if isinstance(model.head_norm, nn.LayerNorm):  # fc_norm on the cls token = HF's final layernorm
        out["vit.layernorm.weight"], out["vit.layernorm.bias"] = sd["head_norm.weight"], sd["head_norm.bias"]
    out["classifier.weight"], out["classifier.bias"] = w, b
    return out
