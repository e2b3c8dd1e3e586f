"""Video datasets: real files written with PyAV and decoded back, clip sampling, bad files,
and the generated moving-digits clips."""

import av
import numpy as np
import pytest
import torch

import maeflow
from maeflow.data import build_dataset
from maeflow_video.data import _digits_arrays, bounce, clip_indices, digit_split, moving_digits, read_clip, video_folder


def synthetic_frames(T, H, W):
    """uint8 (T, H, W, 3): a smooth colour gradient plus a bright square that moves with t, so
    every frame is distinguishable after lossy compression."""
    y, x = np.mgrid[0:H, 0:W]
    frames = np.zeros((T, H, W, 3), dtype=np.uint8)
    for t in range(T):
        frames[t, ..., 0] = (x * 255 // max(W - 1, 1)).astype(np.uint8)
        frames[t, ..., 1] = (y * 255 // max(H - 1, 1)).astype(np.uint8)
        frames[t, ..., 2] = 40
        top, left = (2 * t) % (H - 8), (3 * t) % (W - 8)
        frames[t, top : top + 8, left : left + 8] = 255
    return frames


def write_video(path, frames, codec="libx264", rate=25):
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "10", "preset": "ultrafast"}
        else:
            stream.bit_rate = 4_000_000
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


CONTAINERS = [("mp4", "libx264"), ("avi", "mpeg4"), ("webm", "libvpx-vp9"), ("mkv", "libx264")]


@pytest.mark.parametrize("ext,codec", CONTAINERS)
def test_written_video_decodes_back_through_the_dataset(tmp_path, ext, codec):
    frames = synthetic_frames(16, 32, 48)
    (tmp_path / "waves").mkdir()
    write_video(tmp_path / "waves" / f"clip.{ext}", frames, codec)
    ds = video_folder("test", root=tmp_path, num_frames=4, stride=2, img_size=(32, 48), in_chans=3,
                      mean=0.0, std=1.0)  # fmt: skip
    assert len(ds) == 1 and ds.classes == ["waves"] and ds.skipped == []
    clip, label = ds[0]
    assert clip.shape == (3, 4, 32, 48) and clip.dtype == torch.float32 and label == 0
    # centered clip: span (4 − 1)·2 + 1 = 7 of 16 frames → start (16 − 7) // 2 = 4 → frames 4, 6, 8, 10
    original = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 255  # (3, 16, H, W)
    for k, f in enumerate([4, 6, 8, 10]):
        errors = (clip[:, k : k + 1] - original).abs().mean(dim=(0, 2, 3))  # (16,) error vs every frame
        assert errors[f] < 0.03, f"decoded frame {k} differs from frame {f} by {errors[f]:.3f}"
        assert errors.argmin().item() == f


def test_train_clips_are_augmented_to_the_exact_size(tmp_path):
    write_video(tmp_path / "a.mp4", synthetic_frames(20, 32, 48))
    ds = video_folder("train", root=tmp_path, num_frames=4, stride=3, img_size=16, in_chans=1)
    assert ds.num_classes is None
    torch.manual_seed(0)
    clips = [ds[0] for _ in range(3)]
    for clip, label in clips:
        assert clip.shape == (1, 4, 16, 16) and label == -1 and torch.isfinite(clip).all()
    assert not torch.equal(clips[0][0], clips[1][0]) or not torch.equal(clips[1][0], clips[2][0])


def test_short_videos_loop_or_pad(tmp_path):
    frames = synthetic_frames(3, 32, 32)
    path = write_video(tmp_path / "short.mp4", frames)
    assert clip_indices(3, 4, 2, None, "loop") == [0, 2, 1, 0]
    assert clip_indices(3, 4, 2, None, "pad") == [0, 2, 2, 2]
    looped = read_clip(path, num_frames=4, stride=2, short="loop").float()
    padded = read_clip(path, num_frames=4, stride=2, short="pad").float()
    assert looped.shape == padded.shape == (4, 32, 32, 3)
    src = torch.from_numpy(frames).float()
    for got, idx in ((looped, [0, 2, 1, 0]), (padded, [0, 2, 2, 2])):
        for k, f in enumerate(idx):
            assert (got[k] - src[f]).abs().mean() < 8, (k, f)
    with pytest.raises(ValueError, match="short must be one of"):
        clip_indices(3, 4, 2, None, "wrap")


def test_unreadable_files_are_skipped_and_counted_or_strict_error(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        write_video(tmp_path / cls / "ok.mp4", synthetic_frames(4, 16, 16))
    bad = tmp_path / "b" / "broken.mp4"
    bad.write_bytes(b"this is not a video file" * 10)
    with pytest.warns(RuntimeWarning, match="broken.mp4"):
        ds = video_folder("test", root=tmp_path, num_frames=2, stride=1, img_size=16)
    assert len(ds) == 2 and ds.num_classes == 2 and sorted(ds.targets) == [0, 1]
    assert len(ds.skipped) == 1 and ds.skipped[0][0].endswith("broken.mp4")
    with pytest.raises(ValueError, match="broken.mp4"):
        video_folder("test", root=tmp_path, num_frames=2, stride=1, img_size=16, strict=True)


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        video_folder("train", root=tmp_path / "nope")
    with pytest.raises(ValueError, match="empty"):
        video_folder("train", root=tmp_path)
    with pytest.raises(ValueError, match="in_chans must be 1"):
        video_folder("train", root=tmp_path, in_chans=2)


def test_bounce_stays_between_the_walls_and_reflects():
    pos = bounce(start=8.0, velocity=3.0, steps=20, low=0.0, high=10.0)
    assert pos.min() >= 0 and pos.max() <= 10
    np.testing.assert_allclose(pos[:5], [8, 9, 6, 3, 0])  # 8 → 11 reflects to 9, then back down


def test_moving_digits_is_deterministic_and_labeled():
    a = moving_digits("train", num_frames=6, img_size=24, num_samples=12, seed=3)
    b = moving_digits("train", num_frames=6, img_size=24, num_samples=12, seed=3, augment=False)
    c = moving_digits("train", num_frames=6, img_size=24, num_samples=12, seed=4, augment=False)
    assert len(a) == 12 and a.num_classes == 10
    for i in (0, 5, 11):
        ra, la = a.raw_clip(i)
        rb, lb = b.raw_clip(i)
        assert torch.equal(ra, rb) and la == lb
        x, label = b[i]
        assert x.shape == (1, 6, 24, 24) and label == lb == b.targets[i]
    assert not torch.equal(b.raw_clip(0)[0], c.raw_clip(0)[0])
    # the digit moves but stays whole on the canvas: same ink in every frame, not the same frames
    clip, _ = b.raw_clip(2)
    ink = clip.sum(dim=(1, 2))
    torch.testing.assert_close(ink, ink[:1].expand_as(ink))
    assert not torch.equal(clip[0], clip[-1])


def test_moving_digits_split_and_options():
    labels = np.repeat(np.arange(10), 10)
    train, test = digit_split(labels, 0.2, seed=0)
    assert len(test) == 20 and len(np.intersect1d(train, test)) == 0
    _, digit_labels = _digits_arrays()
    train, test = digit_split(digit_labels, 0.2, seed=0)  # the default split: disjoint digit images
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 1797
    tr, te = moving_digits("train"), moving_digits("test")
    assert (len(tr), len(te)) == (2000, 500)
    assert tr.digits.shape[0] == 1438 and te.digits.shape[0] == 359
    x, _ = te[0]
    assert x.shape == (1, 16, 64, 64)
    rgb = moving_digits("test", in_chans=3, num_frames=4, img_size=(32, 48), num_samples=2)
    assert rgb[1][0].shape == (3, 4, 32, 48)
    assert rgb.display_options["mean"] == [0.0586] * 3
    with pytest.raises(ValueError, match="digit_size"):
        moving_digits("train", img_size=16, digit_size=20)


def test_build_dataset_takes_clip_geometry_from_the_model():
    model = maeflow.create_model("videomae_vit_test", in_chans=1)
    ds = build_dataset("moving_digits", "test", model=model, num_samples=3)
    x, _ = ds[0]
    assert x.shape == (1, 8, 32, 32)
    out = model(x[None].expand(2, -1, -1, -1, -1).contiguous())
    assert torch.isfinite(out.loss)
