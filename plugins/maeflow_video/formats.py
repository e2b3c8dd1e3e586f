"""The VideoMAE checkpoint layout (pretraining files), for ``maeflow.load_checkpoint`` and export.

VideoMAE names::

    encoder.patch_embed.proj.{weight,bias}      Conv3d (D, C, t, p, p)
    encoder.blocks.N.{norm1,attn.proj,norm2,mlp.fc1,mlp.fc2}.{weight,bias}
    encoder.blocks.N.attn.qkv.weight            fused (3D, D), no bias
    encoder.blocks.N.attn.{q_bias,v_bias}       (D,) each; there is no k bias
    encoder.norm.{weight,bias}
    encoder_to_decoder.weight                   (Dd, D), no bias
    mask_token                                  (1, 1, Dd)
    decoder.blocks.N.*  decoder.norm.*  decoder.head.{weight,bias}

Files are usually ``{"model": state_dict}`` or ``{"module": state_dict}`` (unwrapped by the
loader). Positional tables are fixed functions of the grid and are not stored in these files.
"""

from __future__ import annotations

import logging
import re

import torch

from maeflow import rename_prefixes
from maeflow_video.tokenizer import videomae_sincos_1d

log = logging.getLogger(__name__)

# maeflow prefix ↔ VideoMAE prefix (block internals have the same names on both sides)
_RULES = [
    ("tokenizer.proj.", "encoder.patch_embed.proj."),
    ("encoder.blocks.", "encoder.blocks."),
    ("encoder.norm.", "encoder.norm."),
    ("decoder.embed.", "encoder_to_decoder."),
    ("decoder.mask_token", "mask_token"),
    ("decoder.blocks.", "decoder.blocks."),
    ("decoder.norm.", "decoder.norm."),
    ("decoder.pred.", "decoder.head."),
]
_QV_BIAS = re.compile(r"^(.*\.attn\.)(q_bias|v_bias)$")


def _check_positions(model) -> None:
    """Warn when the model's table is not the one VideoMAE weights were trained with."""
    for name, part in (("encoder", model.encoder), ("decoder", model.decoder)):
        table = part.pos_embed.table[0]  # (L, D)
        ref = videomae_sincos_1d(table.shape[1], table.shape[0]).to(table)
        if table.shape != ref.shape or not torch.allclose(table, ref, atol=1e-5):
            log.warning(
                "VideoMAE models use its 1-D sin-cos positions (not stored in its files); this model's %s "
                "uses another table, so weights moved between the two see other positions (create the "
                "model with pos_embed='sincos_1d' to match VideoMAE)",
                name,
            )
            return


class VideoMAEFormat:
    """VideoMAE pretraining checkpoints (encoder + decoder, or encoder only)."""

    description = "VideoMAE: encoder.patch_embed.proj (Conv3d), encoder.blocks.N (q_bias/v_bias), decoder.*"
    modalities = ("video",)

    def detect(self, sd, model) -> bool:
        w = sd.get("encoder.patch_embed.proj.weight")
        return isinstance(w, torch.Tensor) and w.ndim == 5

    def to_maeflow(self, sd, model):
        sd = dict(sd)
        for key in ("encoder.pos_embed", "pos_embed", "decoder.pos_embed"):
            sd.pop(key, None)  # learnable-position variants; maeflow keeps its fixed tables
        _check_positions(model)
        out = rename_prefixes(sd, [(new, old) for old, new in _RULES])
        own = model.state_dict()
        # fused qkv bias = [q_bias, 0, v_bias]: the k part is zero, which is exact (see presets.py)
        qv: dict[str, dict[str, torch.Tensor]] = {}
        for key in [k for k in out if _QV_BIAS.match(k)]:
            prefix, which = _QV_BIAS.match(key).groups()
            qv.setdefault(prefix, {})[which] = out.pop(key)
        for prefix, parts in qv.items():
            if set(parts) != {"q_bias", "v_bias"}:
                raise ValueError(f"VideoMAE checkpoint has only {sorted(parts)} at {prefix}; need q_bias and v_bias")
            q, v = parts["q_bias"], parts["v_bias"]
            out[prefix + "qkv.bias"] = torch.cat([q, torch.zeros_like(q), v])
        # parts VideoMAE has no parameter for but this model does: zero is VideoMAE's function
        for key in [k for k in out if k.endswith("attn.qkv.weight")]:
            bias = key[: -len("weight")] + "bias"
            if bias in own and bias not in out:
                out[bias] = torch.zeros_like(own[bias])
        if "decoder.embed.weight" in out and "decoder.embed.bias" in own:
            out["decoder.embed.bias"] = torch.zeros_like(own["decoder.embed.bias"])
        return out

    def from_maeflow(self, sd, model):
        if model.encoder.cls_token is not None:
            raise ValueError("VideoMAE has no cls token; export a model built with cls_token=False")
        _check_positions(model)
        sd = dict(sd)
        bias = sd.pop("decoder.embed.bias", None)
        if bias is not None and bias.abs().max() > 0:
            raise ValueError(
                "VideoMAE's encoder_to_decoder has no bias, but this model's decoder.embed.bias "
                "is non-zero; export a model built with decoder_embed_bias=False"
            )
        out = {}
        for key, value in rename_prefixes(sd, _RULES).items():
            if key.endswith("attn.qkv.bias"):
                q, _k, v = value.chunk(3)  # the k part has no effect on the output (softmax shift)
                out[key[: -len("qkv.bias")] + "q_bias"] = q.clone()
                out[key[: -len("qkv.bias")] + "v_bias"] = v.clone()
            else:
                out[key] = value
        return out
