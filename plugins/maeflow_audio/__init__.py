"""Audio MAE (Audio-MAE): Kaldi log-mel spectrograms as one-channel images.

- :mod:`maeflow_audio.frontend`: waveform or file → normalized log-mel spectrogram (B, 1, T, F);
- :class:`SpectrogramTokenizer`: 16 × 16 patches over (time, frequency), time-major tokens;
- :class:`TimeFrequencyMasker`: masks whole time columns and frequency rows of the token grid;
- :class:`WindowedBlock`: the decoder's local (shifted-window) attention;
- presets ``audiomae_vit_base_patch16`` and tiny ``*_test`` variants; datasets ``audio_folder``
  and ``synthetic_sounds``; the ``audiomae`` checkpoint format; the ``audio`` visualizer.
"""

from maeflow_audio.attention import WindowedBlock
from maeflow_audio.frontend import NORM_STATS, AudioFrontend, load_audio
from maeflow_audio.masking import TimeFrequencyMasker
from maeflow_audio.presets import AudioMAEConfig, build_audio_mae
from maeflow_audio.tokenizer import SpectrogramTokenizer

__all__ = [
    "NORM_STATS",
    "AudioFrontend",
    "AudioMAEConfig",
    "SpectrogramTokenizer",
    "TimeFrequencyMasker",
    "WindowedBlock",
    "build_audio_mae",
    "load_audio",
]
