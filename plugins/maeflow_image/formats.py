"""Checkpoint layouts for image MAE: the official MAE files, Hugging Face ``ViTMAEForPreTraining``
(both generations of names), and timm's ViT encoder (export).

Positional tables are fixed sin-cos functions of the grid, so maeflow does not store them; on
export they are written with a zero cls slot (the MAE, timm and Hugging Face convention), on
import they are compared with maeflow's own table and a difference is reported.
"""

from __future__ import annotations

import logging
import re

import torch

from maeflow import rename_prefixes

log = logging.getLogger(__name__)

# maeflow name prefix ↔ official MAE prefix (timm uses the encoder half of it)
_MAE_RULES = [
    ("tokenizer.proj.", "patch_embed.proj."),
    ("encoder.cls_token", "cls_token"),
    ("encoder.blocks.", "blocks."),
    ("encoder.norm.", "norm."),
    ("decoder.embed.", "decoder_embed."),
    ("decoder.mask_token", "mask_token"),
    ("decoder.blocks.", "decoder_blocks."),
    ("decoder.norm.", "decoder_norm."),
    ("decoder.pred.", "decoder_pred."),
]


def _with_cls_slot(table: torch.Tensor) -> torch.Tensor:
    """(1, L, D) → (1, 1 + L, D) with zeros for the cls token."""
    return torch.cat([table.new_zeros(1, 1, table.shape[-1]), table], dim=1).detach().cpu()


def _check_table(name: str, given: torch.Tensor | None, ours: torch.Tensor) -> None:
    if given is None:
        return
    given = given.float().reshape(-1, given.shape[-1])[-ours.shape[1] :]
    if given.shape != ours[0].shape or not torch.allclose(given, ours[0].cpu().float(), atol=1e-4):
        log.warning("checkpoint %s differs from maeflow's fixed sin-cos table; maeflow keeps its own", name)


class OfficialMAEFormat:
    """``{"model": state_dict}`` files of the MAE reference code; encoder-only ("pretrain")
    files load the encoder and report the decoder as missing."""

    description = "MAE reference layout: patch_embed.proj, blocks.N, decoder_blocks.N, ..."
    modalities = ("image",)

    def detect(self, sd, model) -> bool:
        # Audio-MAE files share these names; they belong to the audio plugin's format
        is_image = getattr(model, "modality", "image") == "image"
        return is_image and "patch_embed.proj.weight" in sd and "blocks.0.attn.qkv.weight" in sd

    def to_maeflow(self, sd, model):
        sd = dict(sd)
        _check_table("pos_embed", sd.pop("pos_embed", None), model.encoder.pos_embed.table)
        _check_table("decoder_pos_embed", sd.pop("decoder_pos_embed", None), model.decoder.pos_embed.table)
        for key in [k for k in sd if k.startswith("head.") or k.startswith("fc_norm.")]:
            sd.pop(key)  # fine-tuning heads have no place in an MAE
        return rename_prefixes(sd, [(new, old) for old, new in _MAE_RULES])

    def from_maeflow(self, sd, model):
        out = rename_prefixes(sd, _MAE_RULES)
        out["pos_embed"] = _with_cls_slot(model.encoder.pos_embed.table)
        out["decoder_pos_embed"] = _with_cls_slot(model.decoder.pos_embed.table)
        return out


class TimmViTFormat:
    """timm ``VisionTransformer`` encoder state dict (export only; timm files load through the
    ``mae`` format, which has the same names). ``timm.create_model("vit_base_patch16_224",
    num_classes=0)`` loads the result strictly. A fine-tuned classifier exports with its head
    (:mod:`maeflow_image.classifier_export`)."""

    description = "timm ViT encoder: cls_token, pos_embed, patch_embed, blocks.N, norm"
    modalities = ("image",)

    def detect(self, sd, model) -> bool:
        return False

    def from_maeflow(self, sd, model):
        if getattr(model, "is_classifier", False):  # a maeflow finetune / linprobe classifier, with its head
            from maeflow_image.classifier_export import to_timm

            return to_timm(sd, model, _MAE_RULES, _with_cls_slot)
        enc = {k: v for k, v in sd.items() if k.startswith(("tokenizer.", "encoder."))}
        out = rename_prefixes(enc, _MAE_RULES)
        out["pos_embed"] = _with_cls_slot(model.encoder.pos_embed.table)
        return out


# Hugging Face block-internal names, per generation: (maeflow suffix, HF new suffix, HF old suffix)
_HF_BLOCK = [
    ("norm1.", "layernorm_before.", "layernorm_before."),
    ("norm2.", "layernorm_after.", "layernorm_after."),
    ("attn.proj.", "attention.o_proj.", "attention.output.dense."),
    ("mlp.fc1.", "mlp.fc1.", "intermediate.dense."),
    ("mlp.fc2.", "mlp.fc2.", "output.dense."),
]
_HF_QKV = {
    "new": ("attention.q_proj.", "attention.k_proj.", "attention.v_proj."),
    "old": ("attention.attention.query.", "attention.attention.key.", "attention.attention.value."),
}
_HF_TOP = [
    ("tokenizer.proj.", "vit.embeddings.patch_embeddings.projection."),
    ("encoder.cls_token", "vit.embeddings.cls_token"),
    ("encoder.norm.", "vit.layernorm."),
    ("decoder.embed.", "decoder.decoder_embed."),
    ("decoder.mask_token", "decoder.mask_token"),
    ("decoder.norm.", "decoder.decoder_norm."),
    ("decoder.pred.", "decoder.decoder_pred."),
]
_HF_STACKS = {
    "new": ("vit.layers.", "decoder.decoder_layers."),
    "old": ("vit.encoder.layer.", "decoder.decoder_layers."),
}


def _rename_one(key: str, rules: list[tuple[str, str]]) -> str:
    return next(iter(rename_prefixes({key: None}, rules)))


class HuggingFaceViTMAEFormat:
    """``ViTMAEForPreTraining`` names: the older ones of published files
    (``vit.encoder.layer.N.attention.attention.query``) and transformers 5.x's
    (``vit.layers.N.attention.q_proj``). Export writes the generation given by ``generation``."""

    description = "Hugging Face ViTMAEForPreTraining: vit.embeddings..., decoder.decoder_layers..."
    modalities = ("image",)

    def __init__(self, generation: str = "new"):
        self.generation = generation

    @staticmethod
    def _generation(sd) -> str | None:
        if any(k.startswith("vit.layers.") for k in sd) or any(".attention.q_proj." in k for k in sd):
            return "new"
        if any(k.startswith("vit.encoder.layer.") for k in sd) or any(".attention.attention.query." in k for k in sd):
            return "old"
        return None

    def detect(self, sd, model) -> bool:
        return "vit.embeddings.patch_embeddings.projection.weight" in sd and self._generation(sd) is not None

    def to_maeflow(self, sd, model):
        gen = self._generation(sd) or "new"
        enc_stack, dec_stack = _HF_STACKS[gen]
        sd = dict(sd)
        _check_table(
            "vit.embeddings.position_embeddings",
            sd.pop("vit.embeddings.position_embeddings", None),
            model.encoder.pos_embed.table,
        )
        _check_table(
            "decoder.decoder_pos_embed", sd.pop("decoder.decoder_pos_embed", None), model.decoder.pos_embed.table
        )
        out = {}
        pending: dict[tuple[str, str], dict[int, torch.Tensor]] = {}
        block_re = re.compile(rf"^({re.escape(enc_stack)}|{re.escape(dec_stack)})(\d+)\.(.+)$")
        for key, value in sd.items():
            m = block_re.match(key)
            if m is None:
                out[_rename_one(key, [(h, o) for o, h in _HF_TOP])] = value
                continue
            stack, idx, rest = m.groups()
            prefix = ("encoder" if stack == enc_stack else "decoder") + f".blocks.{idx}."
            for i, q in enumerate(_HF_QKV[gen]):
                if rest.startswith(q):
                    pending.setdefault((prefix, rest[len(q) :]), {})[i] = value
                    break
            else:
                for ours, new, old in _HF_BLOCK:
                    hf = new if gen == "new" else old
                    if rest.startswith(hf):
                        out[prefix + ours + rest[len(hf) :]] = value
                        break
                else:
                    out[key] = value  # left for the caller to report as unexpected
        for (prefix, leaf), parts in pending.items():
            if len(parts) != 3:
                raise ValueError(f"incomplete q/k/v in Hugging Face checkpoint at {prefix}{leaf}")
            out[f"{prefix}attn.qkv.{leaf}"] = torch.cat([parts[0], parts[1], parts[2]], dim=0)
        return out

    def from_maeflow(self, sd, model):
        if getattr(model, "is_classifier", False):  # as ViTForImageClassification (new names)
            from maeflow_image.classifier_export import to_hf

            return to_hf(sd, model, HuggingFaceViTMAEFormat("new"))
        gen = self.generation
        enc_stack, dec_stack = _HF_STACKS[gen]
        out = {}
        block_re = re.compile(r"^(encoder|decoder)\.blocks\.(\d+)\.(.+)$")
        for key, value in sd.items():
            m = block_re.match(key)
            if m is None:
                out[_rename_one(key, _HF_TOP)] = value
                continue
            part, idx, rest = m.groups()
            prefix = (enc_stack if part == "encoder" else dec_stack) + f"{idx}."
            if rest.startswith("attn.qkv."):
                leaf = rest[len("attn.qkv.") :]
                for name, chunk in zip(_HF_QKV[gen], value.chunk(3, dim=0), strict=True):
                    out[prefix + name + leaf] = chunk.clone()
                continue
            for ours, new, old in _HF_BLOCK:
                if rest.startswith(ours):
                    out[prefix + (new if gen == "new" else old) + rest[len(ours) :]] = value
                    break
            else:
                raise KeyError(f"no Hugging Face name for {key}")
        out["vit.embeddings.position_embeddings"] = _with_cls_slot(model.encoder.pos_embed.table)
        out["decoder.decoder_pos_embed"] = _with_cls_slot(model.decoder.pos_embed.table)
        return out
