"""Image MAE (He et al., 2022): the reference maeflow plugin."""

from maeflow_image.presets import ImageMAEConfig, build_image_mae
from maeflow_image.tokenizer import PatchTokenizer

__all__ = ["ImageMAEConfig", "PatchTokenizer", "build_image_mae"]
