"""Audio datasets: a folder of audio files, and generated labeled sound events.

Both return items ``(spectrogram (1, T, F), label)`` already through the front end
(:class:`maeflow_audio.frontend.AudioFrontend`), so the work runs in DataLoader workers and the
model receives normalized spectrograms. ``input_size = (T, F)`` (frames, mel bins) and
``sample_rate`` default to the model's when built through ``maeflow.data.build_dataset``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch.utils.data import Dataset

from maeflow.data import FolderDataset, check_split, scan_folder, split_folder
from maeflow.data.records import SampleCodec
from maeflow_audio.frontend import AudioFrontend, audio_library, load_audio, resample, resolve_stats, to_mono
from maeflow_audio.tokenizer import to_tf

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


def crop_waveform(wav: torch.Tensor, length: int, random: bool) -> torch.Tensor:
    """(samples,) → at most ``length`` samples: a random window (training) or the start.
    Shorter clips are returned whole; the front end pads their spectrogram."""
    n = wav.shape[-1]
    if n <= length:
        return wav
    start = int(torch.randint(0, n - length + 1, ()).item()) if random else 0
    return wav[..., start : start + length]


def _display_options(frontend: AudioFrontend) -> dict:
    mean, std = frontend.mean_std
    return {"mean": mean, "std": std, "frame_shift_ms": 10.0}


# ---------------------------------------------------------------------------------------------
# folder of audio files


def _check_audio_file(path: Path | BinaryIO) -> None:
    """Cheap up-front test: the header reads and the file holds samples."""
    sf = audio_library("soundfile", "reading audio files")
    try:
        frames = sf.info(path).frames
    except Exception:
        frames = load_audio(path)[0].shape[-1]  # a format soundfile does not know: decode it (load_audio rewinds)
    if frames == 0:
        raise ValueError("empty audio file (no samples)")


class _ClipLoader:
    """path → (1, T, F): read, mono, resample, crop to the clip, front end. A class (not a
    closure) so that DataLoader workers can pickle it."""

    def __init__(self, frontend: AudioFrontend, clip_samples: int, random_crop: bool):
        self.frontend = frontend
        self.clip_samples = clip_samples
        self.random_crop = random_crop

    def __call__(self, path: Path | BinaryIO) -> torch.Tensor:  # a file, or a shard member's bytes
        wav, sr = load_audio(path)
        if wav.shape[-1] == 0:
            raise ValueError("empty audio file (no samples)")
        wav = resample(to_mono(wav), sr, self.frontend.sample_rate)
        wav = crop_waveform(wav, self.clip_samples, self.random_crop)
        return self.frontend.spectrogram(wav)


def audio_folder(
    split: str = "train",
    root: str | os.PathLike | None = None,
    input_size: int | Sequence[int] = (1024, 128),
    sample_rate: int = 16000,
    stats: str | Sequence[float] = "audioset",
    clip_seconds: float | None = None,
    augment: bool | None = None,
    strict: bool = False,
    labels: bool | None = None,
    extensions: Sequence[str] = AUDIO_EXTENSIONS,
    verify: bool | None = None,
) -> FolderDataset:
    """Audio files as normalized log-mel spectrograms (1, T, F), one class per subfolder.

    Each file is read (soundfile, then torchaudio, then PyAV), mixed to mono, resampled to
    ``sample_rate`` (logged once per source rate), cut to ``clip_seconds`` and turned into a
    normalized spectrogram; clips shorter than that are padded (zeros in log-mel, the
    reference's choice). Unreadable or empty files are skipped and recorded in ``skipped``.

    :param root: the folder; the split reads ``root/<split>`` (``root/val`` also serves "test")
        when it exists, else ``root`` itself.
    :param input_size: spectrogram frames × mel bins (T, F), one frame per 10 ms; an int is both;
        the model's when trained.
    :param sample_rate: every file is resampled to this rate (Hz) first; the model's when trained.
    :param stats: the spectrogram normalization ``(x − mean) / (2·std)``: a dataset name
        ("audioset", "esc50", "speechcommands", "synthetic_sounds") or an explicit ``(mean, std)``.
    :param clip_seconds: the length cut from each file; default exactly the ``input_size[0]``
        frames.
    :param augment: a random window of each file (default for "train"); otherwise its start.
    :param strict: raise ``ValueError`` naming an unreadable file instead of skipping it.
    :param labels: class subfolders (True), none (False: label -1) or auto (None: when ``root``
        holds subfolders and no files of its own).
    :param extensions: the file suffixes read (case-insensitive).
    :param verify: check every file's header up front (None: for folders of up to 50,000 files).
    """
    codec = audio_codec(split, input_size, sample_rate, stats, clip_seconds, augment)
    folder = split_folder(root, split, aliases=("val",) if split == "test" else (), what="audio_folder")
    index = scan_folder(folder, extensions, labels=labels, what="audio_folder")
    ds = FolderDataset(index, load=codec.load, strict=strict, check=codec.check, verify=verify,
                       what="audio_folder")  # fmt: skip
    codec.apply_attrs(ds)
    return ds


def audio_codec(
    split: str = "train",
    input_size: int | Sequence[int] = (1024, 128),
    sample_rate: int = 16000,
    stats: str | Sequence[float] = "audioset",
    clip_seconds: float | None = None,
    augment: bool | None = None,
) -> SampleCodec:
    """How ``audio_folder`` reads one file (or its bytes in a shard, as an in-memory file); the
    options are ``audio_folder``'s."""
    check_split(split)
    T, F = to_tf(input_size)
    augment = split == "train" if augment is None else bool(augment)
    frontend = AudioFrontend(sample_rate=int(sample_rate), num_mel_bins=F, target_frames=T,
                             stats=stats if isinstance(stats, str) else tuple(stats))  # fmt: skip
    clip = frontend.clip_samples if clip_seconds is None else int(round(float(clip_seconds) * sample_rate))
    if clip <= 0:
        raise ValueError(f"clip_seconds must be positive, got {clip_seconds}")
    audio_library("soundfile", "reading audio files")  # once here, not as a "bad file" per file
    return SampleCodec(load=_ClipLoader(frontend, clip, augment), check=_check_audio_file,
                       attrs={"display_options": _display_options(frontend), "frontend": frontend})  # fmt: skip


# ---------------------------------------------------------------------------------------------
# generated sound events

SOUND_CLASSES = ("tone", "chirp", "harmonic", "noise_burst", "am_tone")
_SPLIT_STREAM = {"train": 0, "test": 1}


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _envelope(rng: np.random.Generator, n: int) -> np.ndarray:
    """An event somewhere in the clip: random onset, 30–90 % of the clip, short fades."""
    length = int(n * rng.uniform(0.3, 0.9))
    start = int(rng.integers(0, n - length + 1))
    fade = max(1, int(0.1 * length))
    env = np.zeros(n)
    env[start : start + length] = 1.0
    ramp = np.linspace(0.0, 1.0, fade)
    env[start : start + fade] *= ramp
    env[start + length - fade : start + length] *= ramp[::-1]
    return env


def synthesize(label: int, rng: np.random.Generator, num_samples: int, sample_rate: int) -> np.ndarray:
    """One clip (num_samples,) float32 of class ``SOUND_CLASSES[label]`` with random parameters,
    random onset and gain, over faint background noise."""
    t = np.arange(num_samples) / sample_rate
    nyq = sample_rate / 2
    kind = SOUND_CLASSES[label]
    phase = rng.uniform(0, 2 * np.pi)
    if kind == "tone":
        x = np.sin(2 * np.pi * _log_uniform(rng, 150, 0.45 * nyq) * t + phase)
    elif kind == "chirp":  # exponential sweep over 1–4 octaves, up or down
        f0 = _log_uniform(rng, 150, 0.1 * nyq)
        f1 = min(f0 * 2 ** rng.uniform(1, 4), 0.45 * nyq)
        if rng.random() < 0.5:
            f0, f1 = f1, f0
        dur = t[-1] if num_samples > 1 else 1.0
        k = math.log(f1 / f0) / dur
        x = np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k + phase)
    elif kind == "harmonic":  # f0 plus 3–8 harmonics below Nyquist, decaying
        f0 = _log_uniform(rng, 100, 600)
        decay = rng.uniform(0.3, 0.9)
        x = np.zeros(num_samples)
        for h in range(1, int(rng.integers(4, 10))):
            if h * f0 < 0.45 * nyq:
                x += decay ** (h - 1) * np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi))
    elif kind == "noise_burst":  # white noise through a random one-pole low-pass (in the frequency domain)
        a = rng.uniform(0.0, 0.95)
        spectrum = np.fft.rfft(rng.standard_normal(num_samples))
        w = np.pi * np.arange(spectrum.shape[0]) / max(spectrum.shape[0] - 1, 1)
        x = np.fft.irfft(spectrum / (1 - a * np.exp(-1j * w)), n=num_samples)
    elif kind == "am_tone":  # carrier modulated at 4–30 Hz
        depth = rng.uniform(0.6, 1.0)
        rate = rng.uniform(4, 30)
        mod = 1 - depth * 0.5 * (1 + np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
        x = mod * np.sin(2 * np.pi * _log_uniform(rng, 150, 0.45 * nyq) * t + phase)
    else:
        raise ValueError(f"unknown sound class {label}")
    x = x / (np.abs(x).max() + 1e-8) * _envelope(rng, num_samples)
    x = x * 10 ** rng.uniform(-1.5, 0)  # −30 … 0 dB
    x += 10 ** rng.uniform(-4, -2.5) * rng.standard_normal(num_samples)  # background
    return x.astype(np.float32)


class SyntheticSounds(Dataset):
    """Labeled sound events generated on the fly: pure tones, chirps, harmonic stacks, noise
    bursts and amplitude-modulated tones (labels 0–4 in :data:`SOUND_CLASSES` order), with
    random parameters.

    Item ``i`` of a split is the same on every machine and every run for a given ``seed``
    (its random stream is seeded by ``(seed, split, i)``); train and test draw from disjoint
    streams, a fixed split. Classes cycle with ``i`` so both splits are balanced. Clips are
    generated 25 % longer than the front end needs; ``augment`` takes a random window of them
    (the training default), otherwise the start.
    """

    classes = list(SOUND_CLASSES)
    num_classes = len(SOUND_CLASSES)

    def __init__(self, split: str, size: int, frontend: AudioFrontend, seed: int = 0, augment: bool = False):
        check_split(split)
        if size <= 0:
            raise ValueError(f"synthetic_sounds needs a positive size, got {size}")
        self.split = split
        self.size = int(size)
        self.frontend = frontend
        self.seed = int(seed)
        self.augment = augment
        self.clip_samples = frontend.clip_samples
        self.skipped: list[tuple[str, str]] = []
        self.display_options = _display_options(frontend)

    def __len__(self) -> int:
        return self.size

    @property
    def targets(self) -> list[int]:
        return [i % self.num_classes for i in range(self.size)]

    def waveform(self, idx: int) -> torch.Tensor:
        """The full generated clip (samples,) for item ``idx`` (before cropping)."""
        if not 0 <= idx < self.size:
            raise IndexError(f"index {idx} out of range for {self.size} items")
        rng = np.random.default_rng([self.seed, _SPLIT_STREAM[self.split], idx])
        n = int(self.clip_samples * 1.25)
        return torch.from_numpy(synthesize(idx % self.num_classes, rng, n, self.frontend.sample_rate))

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        wav = crop_waveform(self.waveform(idx), self.clip_samples, self.augment)
        return self.frontend.spectrogram(wav), idx % self.num_classes


def synthetic_sounds(
    split: str = "train",
    train_size: int = 2000,
    test_size: int = 500,
    input_size: int | Sequence[int] = (1024, 128),
    sample_rate: int = 16000,
    stats: str | Sequence[float] = "synthetic_sounds",
    seed: int = 0,
    augment: bool | None = None,
) -> SyntheticSounds:
    """Generated sound events (see :class:`SyntheticSounds`): tones, chirps, harmonic stacks, noise
    bursts and amplitude-modulated tones, labels 0–4, balanced; nothing is read or downloaded.

    :param train_size: items in the "train" split.
    :param test_size: items in the "test" split (drawn from a stream disjoint from train's).
    :param input_size: spectrogram frames × mel bins (T, F), one frame per 10 ms; an int is both;
        the model's when trained.
    :param sample_rate: the rate (Hz) the clips are generated at; the model's when trained.
    :param stats: the spectrogram normalization: a dataset name (the default was measured on
        this dataset) or an explicit ``(mean, std)``, as for ``audio_folder``.
    :param seed: fixes every item: item ``i`` of a split is the same on every machine and run.
    :param augment: a random window of each (25 % longer) generated clip (default for "train");
        otherwise its start.
    """
    check_split(split)
    T, F = to_tf(input_size)
    resolve_stats(stats if isinstance(stats, str) else tuple(stats))
    frontend = AudioFrontend(sample_rate=int(sample_rate), num_mel_bins=F, target_frames=T,
                             stats=stats if isinstance(stats, str) else tuple(stats))  # fmt: skip
    size = int(train_size if split == "train" else test_size)
    augment = split == "train" if augment is None else bool(augment)
    return SyntheticSounds(split, size, frontend, seed=seed, augment=augment)
