"""maeflow: modality-generic masked-autoencoder pretraining.

Public API (what plugins and user code import)::

    import maeflow
    model = maeflow.create_model("mae_vit_base_patch16", img_size=128)
    out = model(images)            # MAEOutput: loss, pred, target, mask, ...
    maeflow.load_checkpoint(model, "mae_pretrain_vit_base.pth")
"""

from maeflow._optional import MissingDependency, import_optional
from maeflow._registry import Demo, Registrar, Registry
from maeflow.checkpoint import (
    LoadResult,
    export_state_dict,
    load_checkpoint,
    model_from_checkpoint,
    rename_prefixes,
    save_model,
)
from maeflow.factory import apply_overrides, create_model, list_models, preset
from maeflow.hookspecs import hookimpl
from maeflow.interfaces import (
    Loss,
    MAEOutput,
    Masker,
    MaskInfo,
    PositionalEmbedding,
    TargetNormalizer,
    Tokenizer,
    Tokens,
    Visualizer,
)
from maeflow.masking import RandomMasker, check_noise, check_ratio, draw_noise, mask_from_noise, num_visible
from maeflow.model import Decoder, Encoder, MaskedAutoencoder, gather_tokens
from maeflow.nn import Attention, Block, FixedPosEmbed, attention, sincos_1d, sincos_2d, sincos_3d
from maeflow.plugins import register, registry
from maeflow.targets import ChannelPatchNormalizer, IdentityNormalizer, MaskedMSELoss, PatchNormalizer
from maeflow.vit_mae import ViTMAEConfig, build_vit_mae

__version__ = "0.1.0"

__all__ = [
    "Attention",
    "Block",
    "ChannelPatchNormalizer",
    "Decoder",
    "Demo",
    "Encoder",
    "FixedPosEmbed",
    "IdentityNormalizer",
    "LoadResult",
    "Loss",
    "MAEOutput",
    "MaskInfo",
    "MaskedAutoencoder",
    "MaskedMSELoss",
    "Masker",
    "MissingDependency",
    "PatchNormalizer",
    "PositionalEmbedding",
    "RandomMasker",
    "Registrar",
    "Registry",
    "TargetNormalizer",
    "Tokenizer",
    "Tokens",
    "ViTMAEConfig",
    "Visualizer",
    "apply_overrides",
    "attention",
    "build_vit_mae",
    "check_noise",
    "check_ratio",
    "create_model",
    "draw_noise",
    "export_state_dict",
    "gather_tokens",
    "hookimpl",
    "import_optional",
    "list_models",
    "load_checkpoint",
    "mask_from_noise",
    "model_from_checkpoint",
    "num_visible",
    "preset",
    "register",
    "registry",
    "rename_prefixes",
    "save_model",
    "sincos_1d",
    "sincos_2d",
    "sincos_3d",
]
