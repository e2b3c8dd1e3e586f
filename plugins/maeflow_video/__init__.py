"""Video MAE (VideoMAE): tubelet tokens, tube masking, spatiotemporal MAE."""

from maeflow.targets import ChannelPatchNormalizer  # in the core since it serves any multichannel modality
from maeflow_video.masking import SpacetimeMasker, TubeMasker
from maeflow_video.presets import VideoMAEConfig, build_video_mae
from maeflow_video.tokenizer import TubeletTokenizer

__all__ = [
    "ChannelPatchNormalizer",
    "SpacetimeMasker",
    "TubeMasker",
    "TubeletTokenizer",
    "VideoMAEConfig",
    "build_video_mae",
]
