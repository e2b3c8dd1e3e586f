"""What a bench entry trains: a maeflow preset, or a Hugging Face ``ViTMAEForPreTraining`` peer
with the same architecture.

A subject wraps one ``nn.Module`` and says how to get its loss from an input batch and the
trivial-baseline loss on the same batch, so the measuring loop never branches on the kind.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

import maeflow
from maeflow.nn.blocks import set_attention_backend
from maeflow.targets import MaskedMSELoss


def trivial_baselines(loss_fn, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """The loss of two constant predictions on the same batch and mask, through the model's own
    loss: ``zeros`` (for per-token normalized targets: the mean of target² over masked tokens)
    and ``mean target`` (every token predicted as the mean masked target of the batch: for point
    groups, the mean group). A model that learned nothing scores about the lower of the two."""
    m = mask.to(torch.bool)
    t = target.float()
    mean = t[m].mean(dim=0) if m.any() else t.flatten(0, 1).mean(dim=0)  # (P,) or the token's trailing shape
    return {
        "zeros": loss_fn(torch.zeros_like(pred, dtype=torch.float32), t, mask).float(),
        "mean target": loss_fn(mean.expand_as(t).contiguous(), t, mask).float(),
    }


class MaeflowSubject:
    """A registered maeflow preset, ``create_model(preset, **args)``.

    Its trivial baselines are the losses of constant predictions on the same batch and mask
    (:func:`trivial_baselines`), and ``baseline_pred(target, mask) -> pred`` when the model or
    its loss declares a modality-specific one.
    """

    kind = "maeflow"

    def __init__(self, preset: str, args: dict[str, Any], attention: str):
        self.model = maeflow.create_model(preset, **args)
        self.attention = attention
        set_attention_backend(self.model, attention)

    @property
    def module(self) -> nn.Module:
        return self.model

    def num_tokens(self) -> int:
        return int(self.model.tokenizer.num_tokens)

    def example_inputs(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        return self.model.tokenizer.example_inputs(batch, generator=generator)

    def no_weight_decay(self) -> set[str]:
        fn = getattr(self.model, "no_weight_decay_names", None)
        return set(fn()) if fn is not None else set()

    def loss(self, module: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, Any]:
        out = module(inputs)
        return out.loss, out

    def visible_tokens(self, aux: Any) -> int:
        return int(aux.mask_info.num_visible)

    def baseline_pred_fn(self):
        for owner in (self.model, self.model.loss_fn):
            fn = getattr(owner, "baseline_pred", None)
            if callable(fn):
                return fn
        return None

    @torch.no_grad()
    def baselines(self, aux: Any) -> dict[str, torch.Tensor]:
        """Losses of constant predictions on this batch and mask (see :func:`trivial_baselines`),
        plus the model's own ``baseline_pred(target, mask)`` when it (or its loss) has one."""
        out = trivial_baselines(self.model.loss_fn, aux.pred, aux.target, aux.mask)
        fn = self.baseline_pred_fn()
        if fn is not None:
            out["baseline_pred"] = self.model.loss_fn(fn(aux.target, aux.mask), aux.target, aux.mask)
        return out

    def counting_backend(self):
        """Context for FLOP counting: attention through SDPA (the kernels the counter knows),
        whatever backend the entry runs with."""
        return _Backend(self.model, "sdpa", self.attention)


class _Backend:
    def __init__(self, model: nn.Module, during: str, after: str):
        self.model, self.during, self.after = model, during, after

    def __enter__(self):
        set_attention_backend(self.model, self.during)

    def __exit__(self, *exc):
        set_attention_backend(self.model, self.after)


def hf_vitmae_settings(model: nn.Module) -> dict[str, Any]:
    """``ViTMAEConfig`` keyword arguments for the architecture of a maeflow model.

    Needs a square 2-D patch tokenizer (``patch_size``, ``img_size``, ``in_chans``), an encoder
    with a cls token and plain ViT blocks in encoder and decoder — what Hugging Face's ViTMAE
    can express; anything else raises ``ValueError`` saying what is missing.
    """
    from maeflow.targets import IdentityNormalizer, PatchNormalizer

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
        layer_norm_eps=1e-6,
        hidden_act="gelu",
    )


class HFViTMAESubject:
    """Hugging Face ``ViTMAEForPreTraining`` (``attn_implementation="sdpa"``) built with the
    architecture of a maeflow image preset; inputs are that preset's example inputs. The entry's
    ``attention`` setting does not apply: the peer always runs its own SDPA path."""

    kind = "hf_vitmae"

    def __init__(self, preset: str, args: dict[str, Any], attention: str):
        from transformers import ViTMAEConfig, ViTMAEForPreTraining

        with torch.device("meta"):
            twin = maeflow.create_model(preset, **args)
        self.settings = hf_vitmae_settings(twin)
        self._twin_tokenizer = twin.tokenizer  # for example_inputs: the very inputs the maeflow entry gets
        self.config = ViTMAEConfig(**self.settings)
        self.model = ViTMAEForPreTraining._from_config(self.config, attn_implementation="sdpa")
        self.attention = "sdpa"

    @property
    def module(self) -> nn.Module:
        return self.model

    def num_tokens(self) -> int:
        return (self.settings["image_size"] // self.settings["patch_size"]) ** 2

    def example_inputs(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        return self._twin_tokenizer.example_inputs(batch, generator=generator)

    def no_weight_decay(self) -> set[str]:
        return {n for n, p in self.model.named_parameters() if p.ndim <= 1 or n.endswith(("cls_token", "mask_token"))}

    def loss(self, module: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, Any]:
        out = module(pixel_values=inputs)
        return out.loss, (inputs, out.mask, out.logits.detach())

    def visible_tokens(self, aux: Any) -> int:
        _, mask, _ = aux
        return int(mask.shape[1] - mask[0].sum().item())

    @torch.no_grad()
    def baselines(self, aux: Any) -> dict[str, torch.Tensor]:
        """Constant predictions against the targets HF's loss uses (patchified, optionally
        normalized), scored with the same masked MSE."""
        inputs, mask, pred = aux
        target = self.model.patchify(inputs).float()
        if self.settings["norm_pix_loss"]:
            target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
        return trivial_baselines(MaskedMSELoss(), pred, target, mask.bool())

    def counting_backend(self):
        return contextlib.nullcontext()  # its SDPA path is what the counter knows already


SUBJECTS = {"maeflow": MaeflowSubject, "hf_vitmae": HFViTMAESubject}
