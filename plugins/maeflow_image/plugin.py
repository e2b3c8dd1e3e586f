"""Registration of the image plugin's components (loaded through the ``maeflow`` entry point)."""

from importlib.resources import files

from maeflow import hookimpl
from maeflow_image.data import digits, digits_codec, image_codec, image_folder
from maeflow_image.formats import HuggingFaceViTMAEFormat, OfficialMAEFormat, TimmViTFormat
from maeflow_image.hf_twin import HFViTMAESubject
from maeflow_image.presets import PRESETS
from maeflow_image.tokenizer import PatchTokenizer
from maeflow_image.visualize import image_reconstruction_figure


@hookimpl
def maeflow_register(registry):
    registry.tokenizer("patch2d", PatchTokenizer)
    for name, builder in PRESETS.items():
        registry.model(name, builder)
    registry.demo("image", files(__package__) / "configs" / "demo.yaml", default=True)
    registry.checkpoint_format("mae", OfficialMAEFormat())
    registry.checkpoint_format("hf", HuggingFaceViTMAEFormat())
    registry.checkpoint_format("timm", TimmViTFormat())
    registry.visualizer("image", image_reconstruction_figure)
    registry.dataset("digits", digits)
    registry.dataset("image_folder", image_folder)
    registry.codec("digits", digits_codec)
    registry.codec("image_folder", image_codec)
    registry.bench_subject("hf_vitmae", HFViTMAESubject)
