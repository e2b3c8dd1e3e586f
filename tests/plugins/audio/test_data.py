"""Audio datasets: real files written with soundfile and read back, bad files, generated sounds."""

import io
import logging

import numpy as np
import pytest
import soundfile as sf
import torch

import maeflow
from maeflow.data import build_dataloader, build_dataset
from maeflow_audio import frontend
from maeflow_audio.data import SOUND_CLASSES
from maeflow_audio.frontend import NORM_STATS, AudioFrontend

SR = 16000
SIZE = (64, 32)  # frames, mel bins: a 0.655 s clip


def _tone(freq, seconds, sr=SR):
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def audio_root(tmp_path):
    root = tmp_path / "sounds"
    (root / "high").mkdir(parents=True)
    (root / "low").mkdir()
    sf.write(root / "high" / "a.wav", _tone(3000, 1.0), SR)
    sf.write(root / "high" / "b.flac", _tone(2500, 1.0), SR)
    sf.write(root / "low" / "c.ogg", _tone(200, 1.0), SR)
    sf.write(root / "low" / "d_44k.wav", _tone(300, 1.0, 44100), 44100)  # wrong rate
    sf.write(root / "low" / "e_short.wav", _tone(250, 0.2), SR)  # shorter than the clip
    sf.write(root / "low" / "f_silent.wav", np.zeros(SR, dtype=np.float32), SR)
    sf.write(root / "low" / "g_empty.wav", np.zeros(0, dtype=np.float32), SR)
    (root / "high" / "h_corrupt.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    return root


def test_folder_reads_files_back(audio_root, caplog, monkeypatch):
    monkeypatch.setattr(frontend, "_logged_rates", set())  # resampling is logged once per rate pair
    caplog.set_level(logging.INFO)
    with pytest.warns(RuntimeWarning, match="skipping"):
        ds = build_dataset("audio_folder", "test", root=str(audio_root), input_size=SIZE)
    assert ds.classes == ["high", "low"] and ds.num_classes == 2
    assert len(ds) == 6
    assert sorted(p.rsplit("/", 1)[-1] for p, _ in ds.skipped) == ["g_empty.wav", "h_corrupt.wav"]
    assert any("empty" in reason for _, reason in ds.skipped)
    names = [p.name for p, _ in ds.samples]
    fe = AudioFrontend(target_frames=64, num_mel_bins=32)
    for i, name in enumerate(names):
        x, label = ds[i]
        assert x.shape == (1, 64, 32) and torch.isfinite(x).all()
        assert label == (0 if name in ("a.wav", "b.flac") else 1)
        if name in ("a.wav", "b.flac", "c.ogg"):  # the test split takes the start of the clip
            wav, _ = sf.read(ds.samples[i][0], dtype="float32")
            ref = fe(torch.from_numpy(wav[: fe.clip_samples])[None])[0]
            torch.testing.assert_close(x, ref, atol=1e-5, rtol=0)
    high, low = ds[names.index("a.wav")][0], ds[names.index("c.ogg")][0]
    assert high[0, :, 24:].mean() > low[0, :, 24:].mean()  # 3 kHz shows in the upper mel bins
    # wrong rate: resampled (and logged); short clip: padded with the padding value at the end
    assert "from 44100 Hz" in caplog.text
    short = ds[names.index("e_short.wav")][0]
    pad = (0 - NORM_STATS["audioset"][0]) / (2 * NORM_STATS["audioset"][1])
    torch.testing.assert_close(short[0, 30:], torch.full((34, 32), pad))


def test_folder_strict_names_the_file(audio_root):
    with pytest.raises(ValueError, match="h_corrupt.wav"):
        build_dataset("audio_folder", "test", root=str(audio_root), input_size=SIZE, strict=True)
    (audio_root / "high" / "h_corrupt.wav").unlink()
    with pytest.raises(ValueError, match=r"g_empty.wav: ValueError: empty audio file"):
        build_dataset("audio_folder", "test", root=str(audio_root), input_size=SIZE, strict=True)


def test_folder_random_crop_in_training(tmp_path):
    root = tmp_path / "long" / "train" / "x"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sf.write(root / "noise.wav", (0.1 * rng.standard_normal(3 * SR)).astype(np.float32), SR)
    ds = build_dataset("audio_folder", "train", root=str(tmp_path / "long"), input_size=SIZE)
    torch.manual_seed(0)
    crops = [ds[0][0] for _ in range(3)]
    assert not torch.equal(crops[0], crops[1])
    test = build_dataset("audio_folder", "test", root=str(tmp_path / "long"), input_size=SIZE, augment=False)
    assert torch.equal(test[0][0], test[0][0])


def test_folder_takes_the_model_settings(audio_root):
    model = maeflow.create_model("audiomae_vit_test")
    with pytest.warns(RuntimeWarning):
        ds = build_dataset("audio_folder", "test", model=model, root=str(audio_root))
    x, _ = ds[0]
    assert x.shape == (1, 64, 32)
    with torch.no_grad():
        model(x[None])


def test_folder_bad_root(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        build_dataset("audio_folder", "train", root=str(tmp_path / "missing"))
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(ValueError, match="empty"):
        build_dataset("audio_folder", "train", root=str(tmp_path / "empty"))


def test_synthetic_sounds_are_deterministic_and_split():
    a = build_dataset("synthetic_sounds", "train", train_size=10, input_size=SIZE, augment=False, seed=3)
    b = build_dataset("synthetic_sounds", "train", train_size=10, input_size=SIZE, augment=False, seed=3)
    test = build_dataset("synthetic_sounds", "test", test_size=10, input_size=SIZE, seed=3)
    assert a.num_classes == len(SOUND_CLASSES) == 5
    assert [a[i][1] for i in range(10)] == [i % 5 for i in range(10)]
    for i in (0, 3, 7):
        assert torch.equal(a[i][0], b[i][0])
        assert not torch.equal(a.waveform(i), test.waveform(i))
        assert a[i][0].shape == (1, 64, 32) and torch.isfinite(a[i][0]).all()
    other = build_dataset("synthetic_sounds", "train", train_size=10, input_size=SIZE, seed=4)
    assert not torch.equal(a.waveform(0), other.waveform(0))


def test_synthetic_stats_fit_the_generated_data():
    ds = build_dataset("synthetic_sounds", "train", train_size=60, input_size=SIZE, augment=False)
    x = torch.stack([ds[i][0] for i in range(60)])
    # normalized as (x - mean) / (2 std): about zero mean and 0.5 std
    assert abs(x.mean().item()) < 0.1 and 0.4 < x.std().item() < 0.6


def test_synthetic_batches_through_a_loader():
    ds = build_dataset("synthetic_sounds", "train", train_size=8, input_size=SIZE)
    x, y = next(iter(build_dataloader(ds, batch_size=4, seed=0)))
    assert x.shape == (4, 1, 64, 32) and y.shape == (4,)


def test_formats_soundfile_cannot_read_go_through_pyav(tmp_path):
    av = pytest.importorskip("av")
    root = tmp_path / "aac" / "tone"
    root.mkdir(parents=True)
    x = _tone(440, 1.0)
    with av.open(str(root / "a.m4a"), "w") as container:
        stream = container.add_stream("aac", rate=SR)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(x[None], format="flt", layout="mono")
        frame.sample_rate = SR
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    wav, rate = frontend.load_audio(root / "a.m4a")
    assert rate == SR and wav.shape[0] == 1 and wav.shape[1] >= SR
    assert 0.25 < wav.abs().max() < 0.35
    member = io.BytesIO((root / "a.m4a").read_bytes())  # a shard member: the same through PyAV
    member.name = "a.m4a"
    again, rate2 = frontend.load_audio(member)
    assert rate2 == rate and torch.equal(again, wav)
    ds = build_dataset("audio_folder", "test", root=str(tmp_path / "aac"), input_size=SIZE, extensions=[".m4a"])
    assert len(ds) == 1 and not ds.skipped and torch.isfinite(ds[0][0]).all()
