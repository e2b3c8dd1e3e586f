"""Video decoder choice (torchcodec where it loads, PyAV otherwise) and repeated sampling."""

import logging

import pytest
import torch

from maeflow_video import decoders
from maeflow_video.data import read_clip, video_folder

from .test_data import synthetic_frames, write_video


def test_auto_falls_back_to_pyav_with_one_log_line(monkeypatch, caplog):
    monkeypatch.setattr(decoders, "torchcodec_problem", lambda: "OSError: no FFmpeg libraries")
    monkeypatch.setattr(decoders, "_said", set())
    with caplog.at_level(logging.INFO, logger="maeflow_video.decoders"):
        assert decoders.resolve_decoder("auto") == "pyav"
        assert decoders.resolve_decoder("auto") == "pyav"
    assert [r.getMessage() for r in caplog.records] == ["video decoding with PyAV: torchcodec does not load "
                                                        "(OSError: no FFmpeg libraries)"]  # fmt: skip
    with pytest.raises(ValueError, match="decoder=torchcodec but torchcodec does not load"):
        decoders.resolve_decoder("torchcodec")
    assert decoders.resolve_decoder("pyav") == "pyav"
    with pytest.raises(ValueError, match="decoder must be one of auto, torchcodec, pyav"):
        decoders.resolve_decoder("ffmpeg")


@pytest.mark.skipif(decoders.torchcodec_problem() is not None, reason="torchcodec does not load here")
def test_torchcodec_and_pyav_decode_the_same_clip(tmp_path):
    path = write_video(tmp_path / "clip.mp4", synthetic_frames(30, 32, 48))
    a = read_clip(path, num_frames=4, stride=3, decoder="pyav")
    b = read_clip(path, num_frames=4, stride=3, decoder="torchcodec")
    assert a.shape == b.shape == (4, 32, 48, 3) and a.dtype == b.dtype == torch.uint8
    assert (a.float() - b.float()).abs().mean() < 2.0  # the same frames (colour conversion may round apart)
    g = torch.Generator().manual_seed(3)
    c = read_clip(open(path, "rb"), num_frames=4, stride=3, random_start=True, decoder="torchcodec", generator=g)
    g = torch.Generator().manual_seed(3)
    d = read_clip(path, num_frames=4, stride=3, random_start=True, decoder="pyav", generator=g)
    assert (c.float() - d.float()).abs().mean() < 2.0  # same random start from the same draw, bytes or path


def test_repeats_augment_one_decoded_clip_several_times(tmp_path):
    write_video(tmp_path / "a.mp4", synthetic_frames(40, 32, 32))
    ds = video_folder("train", root=tmp_path, num_frames=4, stride=2, img_size=32, repeats=3, decoder="pyav")
    clips, _ = ds[0]
    assert ds.repeats == 3 and clips.shape == (3, 3, 4, 32, 32)
    # no crop and no flip: the three copies are the same frames, so they came from one decode
    same = video_folder("train", root=tmp_path, num_frames=4, stride=2, img_size=32, repeats=2, scales=(1.0,),
                        hflip=False, decoder="pyav")  # fmt: skip
    torch.manual_seed(0)
    pair, _ = same[0]
    assert torch.equal(pair[0], pair[1])
    assert video_folder("test", root=tmp_path, num_frames=4, img_size=32, repeats=3)[0][0].dim() == 4  # eval: one
