"""Registration of the audio plugin's components (loaded through the ``maeflow`` entry point)."""

from importlib.resources import files

from maeflow import hookimpl
from maeflow_audio.data import audio_codec, audio_folder, synthetic_sounds
from maeflow_audio.formats import AudioMAEFormat
from maeflow_audio.masking import TimeFrequencyMasker
from maeflow_audio.presets import PRESETS
from maeflow_audio.tokenizer import SpectrogramTokenizer
from maeflow_audio.visualize import spectrogram_reconstruction_figure


@hookimpl
def maeflow_register(registry):
    registry.tokenizer("spectrogram_patch", SpectrogramTokenizer)
    registry.masker("time_freq", TimeFrequencyMasker)
    for name, builder in PRESETS.items():
        registry.model(name, builder)
    registry.demo("audio", files(__package__) / "configs" / "demo.yaml")
    registry.dataset("audio_folder", audio_folder)
    registry.codec("audio_folder", audio_codec)
    registry.dataset("synthetic_sounds", synthetic_sounds)
    registry.checkpoint_format("audiomae", AudioMAEFormat())
    registry.visualizer("audio", spectrogram_reconstruction_figure)
