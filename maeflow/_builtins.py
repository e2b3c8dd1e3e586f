"""Components every modality can use, registered through the same hook as plugins."""

from maeflow.hookspecs import hookimpl
from maeflow.masking import RandomMasker
from maeflow.targets import ChannelPatchNormalizer, IdentityNormalizer, MaskedMSELoss, PatchNormalizer


@hookimpl
def maeflow_register(registry):
    registry.masker("random", RandomMasker)
    registry.target_normalizer("patch_norm", PatchNormalizer)
    registry.target_normalizer("channel_patch_norm", ChannelPatchNormalizer)
    registry.target_normalizer("identity", IdentityNormalizer)
    registry.loss("mse", MaskedMSELoss)
    from maeflow.data.shards import webdataset  # here: maeflow.data imports the plugin manager

    registry.dataset("webdataset", webdataset)
