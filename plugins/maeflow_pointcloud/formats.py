"""Checkpoint layout of the Point-MAE reference code.

Pretraining files are ``{"base_model": state_dict, ...}`` (maeflow's loader looks inside
``base_model`` and strips a DDP ``module.`` prefix) with names such as
``MAE_encoder.encoder.first_conv.0.weight`` (the mini-PointNet), ``MAE_encoder.pos_embed.0``,
``MAE_encoder.blocks.blocks.N.attn.qkv.weight``, ``MAE_encoder.norm``, ``mask_token``,
``decoder_pos_embed.0``, ``MAE_decoder.blocks.N...``, ``MAE_decoder.norm`` and
``increase_dim.0`` (a kernel-1 Conv1d: weight (k·3, D, 1), maeflow's linear head is (k·3, D)).
Fine-tuning files (``encoder.first_conv...``, ``pos_embed``, ``blocks.blocks.N``, ``norm``,
plus a cls token and classification head maeflow has no place for) load the encoder only.
"""

from __future__ import annotations

from maeflow import rename_prefixes

# maeflow prefix → Point-MAE pretraining prefix
_PRETRAIN_RULES = [
    ("tokenizer.", "MAE_encoder.encoder."),
    ("encoder.pos_embed.", "MAE_encoder.pos_embed."),
    ("encoder.blocks.", "MAE_encoder.blocks.blocks."),
    ("encoder.norm.", "MAE_encoder.norm."),
    ("decoder.mask_token", "mask_token"),
    ("decoder.pos_embed.", "decoder_pos_embed."),
    ("decoder.blocks.", "MAE_decoder.blocks."),
    ("decoder.norm.", "MAE_decoder.norm."),
    ("decoder.pred.", "increase_dim.0."),
]
# Point-MAE fine-tuning (classification) prefix → maeflow prefix; the encoder half only
_FINETUNE_RULES = [
    ("encoder.first_conv.", "tokenizer.first_conv."),
    ("encoder.second_conv.", "tokenizer.second_conv."),
    ("pos_embed.", "encoder.pos_embed."),
    ("blocks.blocks.", "encoder.blocks."),
    ("norm.", "encoder.norm."),
]
_FINETUNE_ONLY = ("cls_token", "cls_pos", "cls_head_finetune.")


class PointMAEFormat:
    """Point-MAE ``base_model`` state dicts (pretraining, or the encoder of fine-tuning files)."""

    description = "Point-MAE: MAE_encoder.encoder.first_conv..., MAE_encoder.blocks.blocks.N, MAE_decoder, increase_dim"
    modalities = ("pointcloud",)

    def detect(self, sd, model) -> bool:
        pretrain = "MAE_encoder.encoder.first_conv.0.weight" in sd
        finetune = "encoder.first_conv.0.weight" in sd and "blocks.blocks.0.attn.qkv.weight" in sd
        return (pretrain or finetune) and getattr(model, "modality", None) == "pointcloud"

    def to_maeflow(self, sd, model):
        if "MAE_encoder.encoder.first_conv.0.weight" in sd:
            out = rename_prefixes(sd, [(old, new) for new, old in _PRETRAIN_RULES])
        else:
            kept = {k: v for k, v in sd.items() if not k.startswith(_FINETUNE_ONLY)}
            out = rename_prefixes(kept, _FINETUNE_RULES)
        w = out.get("decoder.pred.weight")
        if w is not None and w.ndim == 3:
            out["decoder.pred.weight"] = w.squeeze(-1)  # Conv1d (k·3, D, 1) → Linear (k·3, D)
        return out

    def from_maeflow(self, sd, model):
        if any(k.startswith("decoder.embed.") for k in sd):
            raise ValueError("Point-MAE's decoder has no input projection; export needs decoder_embed_dim == embed_dim")
        out = rename_prefixes(sd, _PRETRAIN_RULES)
        if "increase_dim.0.weight" in out:
            out["increase_dim.0.weight"] = out["increase_dim.0.weight"].unsqueeze(-1)
        return out
