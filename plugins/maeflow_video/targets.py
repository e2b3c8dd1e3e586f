"""VideoMAE's target normalization (per tubelet and per channel) lives in the core now, as
:class:`maeflow.ChannelPatchNormalizer` registered as ``channel_patch_norm``; this name stays
for code that imports it from here."""

from maeflow.targets import ChannelPatchNormalizer

__all__ = ["ChannelPatchNormalizer"]
