"""Audio-MAE checkpoint layout.

Audio-MAE's files use the MAE names (``patch_embed.proj``, ``blocks.N``, ``norm``,
``decoder_embed``, ``mask_token``, ``decoder_blocks.N``, ``decoder_norm``, ``decoder_pred``,
``pos_embed``, ``decoder_pos_embed``) inside ``{"model": state_dict}``. The image plugin's
``mae`` format detects the same names; this one is named ``audiomae`` (tried first, formats are
tried in name order) and claims a checkpoint only for a model whose ``modality`` is
``"audio"``, so each model kind gets its own rules.

What loads:
- the encoder always (encoder-only "pretrain" files report the decoder as missing);
- the decoder when it is the global (plain ViT) one. The published local decoder is made of
  Swin-v2 blocks (post-norm, cosine attention with ``logit_scale`` and a position-bias MLP),
  which maeflow's windowed blocks do not reproduce; such decoder weights are left out with a
  warning and the decoder keeps its initialization.
Fixed sin-cos tables in the file are compared with maeflow's own (a difference, e.g. another
token order, is reported) and not loaded. Export writes the same names (with the tables); a
maeflow windowed decoder has the global decoder's parameter names, so its weights export as a
global decoder's would.
"""

from __future__ import annotations

import logging

import torch

from maeflow import rename_prefixes

log = logging.getLogger(__name__)

# maeflow name prefix ↔ Audio-MAE prefix
_RULES = [
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
_DECODER_PREFIXES = ("decoder_embed.", "mask_token", "decoder_blocks.", "decoder_norm.", "decoder_pred.")
# names only the Swin-v2 blocks of the local decoder have
_SWIN_MARKERS = ("logit_scale", "meta_mlp", "cpb_mlp", "relative_position", "norm3")


def _with_cls_slot(table: torch.Tensor) -> torch.Tensor:
    """(1, L, D) → (1, 1 + L, D) with zeros for the cls token."""
    return torch.cat([table.new_zeros(1, 1, table.shape[-1]), table], dim=1).detach().cpu()


def _check_table(name: str, given: torch.Tensor | None, ours: torch.Tensor) -> bool:
    """Whether a stored positional table matches maeflow's (last L rows; a cls slot may lead)."""
    if given is None:
        return True
    given = given.float().reshape(-1, given.shape[-1])[-ours.shape[1] :]
    same = given.shape == ours[0].shape and torch.allclose(given, ours[0].cpu().float(), atol=1e-4)
    if not same:
        log.warning("checkpoint %s differs from maeflow's fixed sin-cos table over the (time, frequency) "
                    "token grid; maeflow keeps its own", name)  # fmt: skip
    return same


def is_local_decoder(sd: dict[str, torch.Tensor]) -> bool:
    return any(k.startswith("decoder_blocks.") and any(m in k for m in _SWIN_MARKERS) for k in sd)


class AudioMAEFormat:
    """Audio-MAE's layout, for models of modality ``"audio"``."""

    description = "Audio-MAE layout (audio models): patch_embed.proj, blocks.N, decoder_blocks.N, ..."
    modalities = ("audio",)

    def detect(self, sd, model) -> bool:
        return (
            getattr(model, "modality", None) == "audio"
            and "patch_embed.proj.weight" in sd
            and "blocks.0.attn.qkv.weight" in sd
        )

    def to_maeflow(self, sd, model):
        sd = dict(sd)
        _check_table("pos_embed", sd.pop("pos_embed", None), model.encoder.pos_embed.table)
        _check_table("decoder_pos_embed", sd.pop("decoder_pos_embed", None), model.decoder.pos_embed.table)
        for key in [k for k in sd if k.startswith(("head.", "fc_norm."))]:
            sd.pop(key)  # fine-tuning heads have no place in an MAE
        if is_local_decoder(sd):
            dropped = [k for k in sd if k.startswith(_DECODER_PREFIXES)]
            for key in dropped:
                sd.pop(key)
            log.warning("checkpoint has Audio-MAE's local (Swin-v2) decoder, which maeflow does not reproduce: "
                        "loaded the encoder only, %d decoder entries left out", len(dropped))  # fmt: skip
        return rename_prefixes(sd, [(new, old) for old, new in _RULES])

    def from_maeflow(self, sd, model):
        out = rename_prefixes(sd, _RULES)
        out["pos_embed"] = _with_cls_slot(model.encoder.pos_embed.table)
        out["decoder_pos_embed"] = _with_cls_slot(model.decoder.pos_embed.table)
        return out
