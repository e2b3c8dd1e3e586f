"""Video MAE (VideoMAE): tubelet tokens, tube masking, spatiotemporal MAE."""

from maeflow_video.masking import SpacetimeMasker, TubeMasker
from maeflow_video.presets import VideoMAEConfig, build_video_mae
from maeflow_video.targets import ChannelPatchNormalizer
from maeflow_video.tokenizer import TubeletTokenizer

__all__ = [
    "ChannelPatchNormalizer",
    "SpacetimeMasker",
    "TubeMasker",
    "TubeletTokenizer",
    "VideoMAEConfig",
    "build_video_mae",
]
