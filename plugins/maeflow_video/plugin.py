"""Registration of the video plugin's components (loaded through the ``maeflow`` entry point)."""

from importlib.resources import files

from maeflow import hookimpl
from maeflow_video.data import moving_digits, moving_digits_codec, video_codec, video_folder
from maeflow_video.formats import VideoMAEFormat
from maeflow_video.masking import SpacetimeMasker, TubeMasker
from maeflow_video.presets import PRESETS
from maeflow_video.tokenizer import TubeletTokenizer
from maeflow_video.visualize import video_reconstruction_figure


@hookimpl
def maeflow_register(registry):
    registry.tokenizer("tubelet", TubeletTokenizer)
    registry.masker("tube", TubeMasker)
    registry.masker("random_spacetime", SpacetimeMasker)
    for name, builder in PRESETS.items():
        registry.model(name, builder)
    registry.demo("video", files(__package__) / "configs" / "demo.yaml")
    registry.dataset("moving_digits", moving_digits)
    registry.dataset("video_folder", video_folder)
    registry.codec("moving_digits", moving_digits_codec)
    registry.codec("video_folder", video_codec)
    registry.checkpoint_format("videomae", VideoMAEFormat())
    registry.visualizer("video", video_reconstruction_figure)
