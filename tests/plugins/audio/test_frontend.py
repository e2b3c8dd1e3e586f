"""The front end against torchaudio's Kaldi filterbank called directly with Audio-MAE's settings."""

import logging
import math

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF

from maeflow_audio.frontend import NORM_STATS, AudioFrontend, frames_to_samples

AUDIOSET_MEAN, AUDIOSET_STD = -4.2677393, 4.5689974


def reference(wav: torch.Tensor, sr: int, target_frames: int, mean: float, std: float, bins: int = 128):
    """Audio-MAE's recipe, written out: (samples,) → (target_frames, bins)."""
    wav = wav - wav.mean()
    fb = kaldi.fbank(wav[None], htk_compat=True, sample_frequency=sr, use_energy=False, window_type="hanning",
                     num_mel_bins=bins, dither=0.0, frame_shift=10)  # fmt: skip
    n = fb.shape[0]
    if n < target_frames:
        fb = torch.nn.functional.pad(fb, (0, 0, 0, target_frames - n))
    fb = fb[:target_frames]
    return (fb - mean) / (std * 2)


def _signal(sr: int, seconds: float, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1800 * t * (1 + t))
    x = x + 0.05 * rng.standard_normal(t.size)
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.1  # a DC offset the mean subtraction removes
    return np.stack([x * (c + 1) / channels for c in range(channels)], axis=1) if channels > 1 else x


def test_matches_kaldi_fbank_on_a_file(tmp_path):
    path = tmp_path / "clip.wav"
    sf.write(path, _signal(16000, 1.5), 16000, subtype="PCM_16")
    wav = torch.from_numpy(sf.read(path, dtype="float32")[0])
    for frames in (1024, 100):  # padded, and cropped
        ours = AudioFrontend(target_frames=frames).from_file(path)
        ref = reference(wav, 16000, frames, AUDIOSET_MEAN, AUDIOSET_STD)
        assert ours.shape == (1, frames, 128)
        torch.testing.assert_close(ours[0], ref, atol=1e-5, rtol=0)


def test_batch_call_and_dataset_constants():
    wav = torch.from_numpy(_signal(16000, 1.3)).float()
    batch = torch.stack([wav, 0.5 * wav])
    fe = AudioFrontend(target_frames=128, stats="speechcommands")
    out = fe(batch)
    assert out.shape == (2, 1, 128, 128)
    mean, std = NORM_STATS["speechcommands"]
    assert (mean, std) == (-6.845978, 5.5654526)
    torch.testing.assert_close(out[1, 0], reference(0.5 * wav, 16000, 128, mean, std), atol=1e-5, rtol=0)
    assert AudioFrontend(stats="esc50").mean_std == (-6.6268077, 5.358466)
    assert AudioFrontend(stats=(1.0, 2.0)).mean_std == (1.0, 2.0)
    with pytest.raises(ValueError, match="unknown normalization stats"):
        AudioFrontend(stats="imagenet")


def test_resamples_and_mixes_down_files(tmp_path, caplog):
    path = tmp_path / "stereo_22k.flac"
    sf.write(path, _signal(22050, 1.0, channels=2), 22050)
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    mono = torch.from_numpy(data.T.copy()).mean(0)
    expected = reference(AF.resample(mono, 22050, 16000), 16000, 128, AUDIOSET_MEAN, AUDIOSET_STD)
    with caplog.at_level(logging.INFO, logger="maeflow_audio.frontend"):
        ours = AudioFrontend(target_frames=128).from_file(path)
    torch.testing.assert_close(ours[0], expected, atol=1e-5, rtol=0)


def test_empty_silent_and_short_input_are_finite():
    fe = AudioFrontend(target_frames=32, num_mel_bins=64)
    empty = fe(torch.zeros(1, 0))
    short = fe(torch.randn(1, 100))  # less than one 25 ms window
    pad_value = (0 - AUDIOSET_MEAN) / (2 * AUDIOSET_STD)
    for out in (empty, short):
        assert out.shape == (1, 1, 32, 64)
        torch.testing.assert_close(out, torch.full_like(out, pad_value))
    silent = fe(torch.zeros(1, 16000))
    assert torch.isfinite(silent).all()
    floor = (math.log(torch.finfo(torch.float32).eps) - AUDIOSET_MEAN) / (2 * AUDIOSET_STD)
    torch.testing.assert_close(silent, torch.full_like(silent, floor), atol=1e-4, rtol=0)


def test_frames_to_samples_fills_the_target_exactly():
    fe = AudioFrontend(target_frames=64, num_mel_bins=32)
    n = frames_to_samples(64, 16000)
    assert n == fe.clip_samples == 63 * 160 + 400
    raw = kaldi.fbank(torch.randn(1, n), htk_compat=True, sample_frequency=16000, use_energy=False,
                      window_type="hanning", num_mel_bins=32, dither=0.0, frame_shift=10)  # fmt: skip
    assert raw.shape[0] == 64


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="positive"):
        AudioFrontend(target_frames=0)
    with pytest.raises(ValueError, match="waveform"):
        AudioFrontend().spectrogram(torch.zeros(2, 2, 10))


def test_a_damaged_sample_rate_is_refused_in_one_line_not_resampled_for_minutes():
    from maeflow_audio.frontend import resample

    with pytest.raises(ValueError, match=r"unusual sample rate 16001 Hz: .*sox in.wav -r 16000"):
        resample(torch.zeros(1600), 16001, 16000)  # a damaged header: a 16000×16001 filter
    assert resample(torch.zeros(4410), 44100, 16000).shape[-1] == 1600  # real rates still resample
