"""Shared neural-network parts: attention switch, transformer block, positional tables.

``attention`` is the dispatch (:mod:`maeflow.nn.attention`), the kernels by name are in
:mod:`maeflow.nn.kernels`, and the optional per-shape measurement ``auto`` consults is
:mod:`maeflow.nn.autotune`.
"""

from maeflow.nn.attention import BACKENDS, attention, math_attention, resolve_backend, xformers_available
from maeflow.nn.blocks import Attention, Block, DropPath, Mlp, drop_path_rates, set_attention_backend
from maeflow.nn.pos_embed import FixedPosEmbed, sincos_1d, sincos_2d, sincos_3d

__all__ = [
    "BACKENDS",
    "Attention",
    "Block",
    "DropPath",
    "drop_path_rates",
    "FixedPosEmbed",
    "Mlp",
    "attention",
    "math_attention",
    "resolve_backend",
    "set_attention_backend",
    "sincos_1d",
    "sincos_2d",
    "sincos_3d",
    "xformers_available",
]
