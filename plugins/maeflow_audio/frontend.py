"""Waveforms → normalized log-mel spectrograms, the Audio-MAE way.

The chain (``AudioFrontend``), per clip:

1. mono mixdown (mean over channels) and resampling to the model's rate
   (``torchaudio.functional.resample``; logged once per source rate);
2. subtract the waveform's mean;
3. Kaldi-compatible log-mel filterbank, ``torchaudio.compliance.kaldi.fbank(htk_compat=True,
   use_energy=False, window_type="hanning", dither=0.0, frame_length=25, frame_shift=10,
   num_mel_bins=F)`` → (frames, F);
4. pad with zeros (in log-mel units) at the end, or crop the end, to ``target_frames``;
5. ``(x − mean) / (2·std)`` with dataset constants (:data:`NORM_STATS`; AudioSet's by default).

The front end runs in the data pipeline (a dataset's ``__getitem__``, hence in DataLoader
workers); the model itself takes the result, shaped (B, 1, T, F). Its libraries (torchaudio,
soundfile, PyAV) are the ``audio`` extra, ``pip install 'maeflow[audio]'``: imported on first
use, so the plugin registers and builds models without them.

Empty and silent input: a clip with fewer samples than one 25 ms window (including an empty
one) has no frames, so its spectrogram is all padding (log-mel 0, i.e. ``−mean/(2·std)`` after
normalization) and a warning is logged. A silent (all-zero) clip gives the filterbank's floor,
``log(float32 eps) ≈ −15.94`` in every bin, before normalization. Neither produces NaN.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from maeflow import import_optional

log = logging.getLogger(__name__)

# (mean, std) of the log-mel filterbank over each dataset, as published with Audio-MAE;
# "synthetic_sounds" was measured on this plugin's generated dataset at 64 frames x 32 mel bins
# (a test checks that it still fits)
NORM_STATS: dict[str, tuple[float, float]] = {
    "audioset": (-4.2677393, 4.5689974),
    "esc50": (-6.6268077, 5.358466),
    "speechcommands": (-6.845978, 5.5654526),
    "synthetic_sounds": (-7.0, 4.7),
}
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
_logged_rates: set[tuple[int, int]] = set()


def audio_library(module: str, needed_for: str = "audio spectrograms"):
    """``torchaudio.functional``, ``soundfile``, ...: a library of the ``audio`` extra."""
    return import_optional(module, install="maeflow[audio]", needed_for=needed_for)


def resolve_stats(stats: str | tuple[float, float] | list[float]) -> tuple[float, float]:
    """A dataset name from :data:`NORM_STATS` or an explicit ``(mean, std)``."""
    if isinstance(stats, str):
        key = stats.lower().replace("-", "").replace("_", "")
        for name, value in NORM_STATS.items():
            if name.replace("_", "") == key:
                return value
        raise ValueError(f"unknown normalization stats {stats!r}; use one of {', '.join(NORM_STATS)} or (mean, std)")
    mean, std = (float(v) for v in stats)
    if not std > 0:
        raise ValueError(f"normalization std must be positive, got {std}")
    return mean, std


def window_samples(sample_rate: int) -> int:
    return int(sample_rate * FRAME_LENGTH_MS / 1000)


def hop_samples(sample_rate: int) -> int:
    return int(sample_rate * FRAME_SHIFT_MS / 1000)


def frames_to_samples(frames: int, sample_rate: int) -> int:
    """Samples a clip needs to give exactly ``frames`` filterbank frames."""
    return (frames - 1) * hop_samples(sample_rate) + window_samples(sample_rate)


def to_mono(waveform: torch.Tensor) -> torch.Tensor:
    """(samples,) or (channels, samples) → (samples,), averaging channels."""
    if waveform.ndim == 1:
        return waveform
    if waveform.ndim == 2:
        return waveform.mean(dim=0)
    raise ValueError(f"expected a waveform shaped (samples,) or (channels, samples), got {tuple(waveform.shape)}")


MAX_RESAMPLE_FILTER = 10_000_000  # phases × taps of the resampling filter (44100 → 16000: 70,560)


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """``waveform`` (..., samples) from ``orig_rate`` to ``new_rate`` (logged once per pair)."""
    if orig_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {orig_rate}")
    if orig_rate == new_rate:
        return waveform
    # torchaudio's polyphase filter has (new/g) phases of about (orig/g) taps, g = gcd: cheap for
    # real rates (44100 → 16000: 160 × 441) but gigabytes for a damaged header's 16001 Hz
    g = math.gcd(int(orig_rate), int(new_rate))
    if (orig_rate // g) * (new_rate // g) > MAX_RESAMPLE_FILTER:
        raise ValueError(
            f"unusual sample rate {orig_rate} Hz: resampling it to {new_rate} Hz needs a "
            f"{new_rate // g}×{orig_rate // g} polyphase filter; resample the file first "
            f"(e.g. sox in.wav -r {new_rate} out.wav) or check its header"
        )
    if (orig_rate, new_rate) not in _logged_rates:
        _logged_rates.add((orig_rate, new_rate))
        log.info("resampling audio from %d Hz to the model's %d Hz", orig_rate, new_rate)
    return audio_library("torchaudio.functional", "resampling audio").resample(waveform, orig_rate, new_rate)


def log_mel(waveform: torch.Tensor, sample_rate: int, num_mel_bins: int = 128) -> torch.Tensor:
    """Mean-subtracted mono waveform (samples,) → Kaldi log-mel filterbank (frames, num_mel_bins).

    Fewer samples than one window give zero frames, (0, num_mel_bins).
    """
    wav = waveform.float()
    wav = wav - wav.mean() if wav.numel() else wav
    if wav.numel() < window_samples(sample_rate):
        return wav.new_zeros(0, num_mel_bins)
    return audio_library("torchaudio.compliance.kaldi").fbank(
        wav[None], htk_compat=True, sample_frequency=sample_rate, use_energy=False, window_type="hanning",
        num_mel_bins=num_mel_bins, dither=0.0, frame_length=FRAME_LENGTH_MS, frame_shift=FRAME_SHIFT_MS,
    )  # fmt: skip


def pad_or_crop(spec: torch.Tensor, target_frames: int) -> torch.Tensor:
    """(frames, F) → (target_frames, F): zeros appended at the end, or the end cut off."""
    n = spec.shape[0]
    if n < target_frames:
        return torch.cat([spec, spec.new_zeros(target_frames - n, spec.shape[1])], dim=0)
    return spec[:target_frames]


@dataclass(frozen=True)
class AudioFrontend:
    """Waveform(s) → normalized spectrograms (B, 1, target_frames, num_mel_bins).

    ``stats`` is a :data:`NORM_STATS` name or an explicit ``(mean, std)``.
    """

    sample_rate: int = 16000
    num_mel_bins: int = 128
    target_frames: int = 1024
    stats: str | tuple[float, float] = "audioset"

    def __post_init__(self):
        if self.sample_rate <= 0 or self.num_mel_bins <= 0 or self.target_frames <= 0:
            raise ValueError(
                f"sample_rate, num_mel_bins and target_frames must be positive, got "
                f"{self.sample_rate}, {self.num_mel_bins}, {self.target_frames}"
            )
        resolve_stats(self.stats)
        audio_library("torchaudio.compliance.kaldi")  # fail here, not in every DataLoader worker

    @property
    def mean_std(self) -> tuple[float, float]:
        return resolve_stats(self.stats)

    @property
    def clip_samples(self) -> int:
        """Samples that fill ``target_frames`` exactly."""
        return frames_to_samples(self.target_frames, self.sample_rate)

    def spectrogram(self, waveform: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """One clip, (samples,) or (channels, samples) → (1, target_frames, num_mel_bins)."""
        wav = to_mono(torch.as_tensor(waveform))
        wav = resample(wav.float(), sample_rate or self.sample_rate, self.sample_rate)
        spec = log_mel(wav, self.sample_rate, self.num_mel_bins)
        if spec.shape[0] == 0:
            log.warning("audio clip of %d samples is shorter than one %g ms frame: spectrogram is all padding",
                        wav.numel(), FRAME_LENGTH_MS)  # fmt: skip
        mean, std = self.mean_std
        spec = (pad_or_crop(spec, self.target_frames) - mean) / (2 * std)
        return spec[None]  # (1, T, F)

    def __call__(self, waveforms: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """A batch of mono clips (B, samples) → (B, 1, T, F); a single clip (samples,) → (1, 1, T, F)."""
        waveforms = torch.as_tensor(waveforms)
        if waveforms.ndim == 1:
            waveforms = waveforms[None]
        if waveforms.ndim != 2:
            raise ValueError(f"expected waveforms shaped (B, samples), got {tuple(waveforms.shape)}")
        return torch.stack([self.spectrogram(w, sample_rate) for w in waveforms])

    def from_file(self, path: str | os.PathLike) -> torch.Tensor:
        """An audio file (any channel count and rate) → (1, T, F)."""
        wav, sr = load_audio(path)
        return self.spectrogram(wav, sr)

    def denormalize(self, spec: torch.Tensor) -> torch.Tensor:
        """Normalized spectrogram → log-mel values (for display)."""
        mean, std = self.mean_std
        return spec * (2 * std) + mean


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else ""


def load_audio(source: str | os.PathLike | BinaryIO) -> tuple[torch.Tensor, int]:
    """Read an audio file → (waveform (channels, samples) float32, sample_rate).

    ``source`` is a path or a binary file object (a shard member). soundfile first (wav, flac,
    ogg, ...), then torchaudio's reader, then PyAV for anything else they cannot decode. Raises
    ``ValueError`` naming the file when no reader can decode it.
    """
    is_path = isinstance(source, (str, os.PathLike))
    if is_path:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"audio file not found: {path}")
        name, source = str(path), str(path)
    else:
        name = str(getattr(source, "name", "") or "<file object>")
    sf = audio_library("soundfile", "reading audio files")
    errors = []

    def rewound():
        if not is_path:
            source.seek(0)
        return source

    try:
        data, sr = sf.read(rewound(), dtype="float32", always_2d=True)  # (samples, channels)
        return torch.from_numpy(np.ascontiguousarray(data.T)), int(sr)
    except Exception as exc:
        errors.append(f"soundfile: {_first_line(exc)}")
    try:
        import torchaudio

        wav, sr = torchaudio.load(rewound())
        return wav.float(), int(sr)
    except ImportError:
        pass  # torchaudio without its decoding backend (torchcodec): not a reason worth reporting
    except Exception as exc:  # torchaudio's torchcodec backend explains itself over many lines: keep the first
        errors.append(f"torchaudio: {type(exc).__name__}: {_first_line(exc)}")
    try:
        return _load_with_av(rewound(), Path(name).suffix)
    except Exception as exc:
        errors.append(f"av: {type(exc).__name__}: {_first_line(exc)}")
    raise ValueError(f"cannot decode audio file {name} ({'; '.join(errors)})")


def _load_with_av(source: str | BinaryIO, suffix: str) -> tuple[torch.Tensor, int]:
    with audio_library("av", f"decoding {suffix or 'this'} audio").open(source) as container:
        stream = next(s for s in container.streams if s.type == "audio")
        chunks = []
        for frame in container.decode(stream):
            arr = frame.to_ndarray()  # (channels, samples), or (1, samples·channels) when interleaved
            if frame.format.is_packed:
                arr = arr.reshape(-1, len(frame.layout.channels)).T
            if np.issubdtype(arr.dtype, np.integer):  # PCM integers → [-1, 1]
                arr = arr / float(np.iinfo(arr.dtype).max)
            chunks.append(arr.astype(np.float32))
        rate = stream.rate
    if not chunks:
        raise ValueError("no audio frames")
    return torch.from_numpy(np.concatenate(chunks, axis=1)), int(rate)
