"""The Hugging Face twin of an image MAE: a ``ViTMAEForPreTraining`` with the architecture (and
optionally the weights) of a maeflow image preset, and the bench subject ``hf_vitmae`` that
measures it next to the maeflow entry of the same preset.

One builder serves the bench (:class:`HFViTMAESubject`), ``benchmarks/cpu_step_vs_hf.py`` and
the parity tests::

    hf = build_hf_vitmae(model, attn_implementation="eager", copy_weights=True)
    hf(pixel_values=x, noise=noise).loss      # == model(x, noise=noise).loss
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

import maeflow
from maeflow.targets import IdentityNormalizer, MaskedMSELoss, PatchNormalizer


def hf_vitmae_settings(model: nn.Module) -> dict[str, Any]:
    """``transformers.ViTMAEConfig`` keyword arguments for the architecture of a maeflow model.

    Needs a square 2-D patch tokenizer (``patch_size``, ``img_size``, ``in_chans``), an encoder
    with a cls token and plain ViT blocks in encoder and decoder — what Hugging Face's ViTMAE
    can express; anything else raises ``ValueError`` saying what is missing.
    """
    name = getattr(model, "model_name", None) or type(model).__name__
    tok = model.tokenizer
    missing = [a for a in ("patch_size", "img_size", "in_chans") if not hasattr(tok, a)]
    if missing:
        raise ValueError(
            f"hf_vitmae needs an image preset with a 2-D patch tokenizer; {name!r} has no tokenizer "
            f"attribute(s) {', '.join(missing)}"
        )
    size = tok.img_size if isinstance(tok.img_size, (tuple, list)) else (tok.img_size, tok.img_size)
    if size[0] != size[1]:
        raise ValueError(f"hf_vitmae needs square images (its positional table is square); {name!r} is {size}")
    enc, dec = model.encoder, model.decoder
    if enc.cls_token is None or enc.pos_every_block or dec.pos_every_block:
        raise ValueError(f"hf_vitmae needs a cls token and positions added once at the input; {name!r} differs")

    def blocks(part: nn.Module) -> tuple[int, int, int, bool]:
        b = part.blocks[0]
        try:
            return len(part.blocks), b.attn.num_heads, b.mlp.fc1.out_features, b.attn.qkv.bias is not None
        except AttributeError:
            raise ValueError(f"hf_vitmae needs plain ViT blocks; {name!r} uses {type(b).__name__}") from None

    depth, heads, inter, qkv_bias = blocks(enc)
    d_depth, d_heads, d_inter, _ = blocks(dec)
    if isinstance(model.target_normalizer, PatchNormalizer):
        norm_pix = True
    elif isinstance(model.target_normalizer, IdentityNormalizer):
        norm_pix = False
    else:
        raise ValueError(f"hf_vitmae knows per-patch or no target normalization; {name!r} uses another")
    return dict(
        hidden_size=enc.embed_dim,
        num_hidden_layers=depth,
        num_attention_heads=heads,
        intermediate_size=inter,
        qkv_bias=qkv_bias,
        decoder_hidden_size=dec.embed_dim,
        decoder_num_hidden_layers=d_depth,
        decoder_num_attention_heads=d_heads,
        decoder_intermediate_size=d_inter,
        patch_size=int(tok.patch_size),
        image_size=int(size[0]),
        num_channels=int(tok.in_chans),
        mask_ratio=float(model.mask_ratio),
        norm_pix_loss=norm_pix,
        layer_norm_eps=float(enc.norm.eps),
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def build_hf_vitmae(model: nn.Module, attn_implementation: str = "sdpa", copy_weights: bool = False) -> nn.Module:
    """A ``ViTMAEForPreTraining`` with the architecture of maeflow image ``model`` (see
    :func:`hf_vitmae_settings`), freshly initialized, or with ``model``'s weights
    (``copy_weights``, through the ``hf`` checkpoint format). Needs ``transformers``."""
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    config = ViTMAEConfig(**hf_vitmae_settings(model))
    hf = ViTMAEForPreTraining._from_config(config, attn_implementation=attn_implementation)
    if copy_weights:
        result = hf.load_state_dict(maeflow.export_state_dict(model, "hf"), strict=True)
        if result.missing_keys or result.unexpected_keys:
            raise RuntimeError(f"weight transfer to Hugging Face failed: {result}")
    return hf


class HFViTMAESubject:
    """Bench subject ``hf_vitmae``: Hugging Face ``ViTMAEForPreTraining`` (``attn_implementation=
    "sdpa"``) built with the architecture of a maeflow image preset; inputs are that preset's
    example inputs. The entry's ``attention`` setting does not apply: the peer always runs its
    own SDPA path. It is a peer (``vs_hf`` compares the maeflow entry of the same preset with
    it): synthetic inputs only, no probes."""

    kind = "hf_vitmae"
    peer = True
    seeded_masks = False  # it draws its masking noise itself

    def __init__(self, preset: str, args: dict[str, Any], attention: str):
        with torch.device("meta"):
            twin = maeflow.create_model(preset, **args)
        self.model = build_hf_vitmae(twin, "sdpa")
        self.settings = hf_vitmae_settings(twin)
        self._twin_tokenizer = twin.tokenizer  # for example_inputs: the very inputs the maeflow entry gets
        self.attention = "sdpa"

    @staticmethod
    def check(model: nn.Module) -> None:
        """Raise ``ValueError`` unless ``model`` (built on the meta device) has a Hugging Face twin."""
        try:
            import transformers  # noqa: F401
        except ImportError:
            raise ValueError("hf_vitmae entries need the transformers package (pip install transformers)") from None
        hf_vitmae_settings(model)

    @property
    def module(self) -> nn.Module:
        return self.model

    def num_tokens(self) -> int:
        return (self.settings["image_size"] // self.settings["patch_size"]) ** 2

    def example_inputs(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        return self._twin_tokenizer.example_inputs(batch, generator=generator)

    def no_weight_decay(self) -> set[str]:
        return {n for n, p in self.model.named_parameters() if p.ndim <= 1 or n.endswith(("cls_token", "mask_token"))}

    def loss(self, module: nn.Module, inputs: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        out = module(pixel_values=inputs, **kwargs)
        return out.loss, (inputs, out.mask, out.logits.detach())

    def visible_tokens(self, aux: Any) -> int:
        _, mask, _ = aux
        return int(mask.shape[1] - mask[0].sum().item())

    @torch.no_grad()
    def baselines(self, aux: Any) -> dict[str, torch.Tensor]:
        """Constant predictions against the targets HF's loss uses (patchified, optionally
        normalized), scored with the same masked MSE."""
        from maeflow.eval.baseline import trivial_baselines

        inputs, mask, pred = aux
        target = self.model.patchify(inputs).float()
        if self.settings["norm_pix_loss"]:
            target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
        return trivial_baselines(MaskedMSELoss(), pred, target, mask.bool())

    def counting_backend(self):
        return contextlib.nullcontext()  # its SDPA path is what the counter knows already

    def compile(self) -> None:
        self.model.compile()  # the whole model: it has no separate transformer stacks to pick
