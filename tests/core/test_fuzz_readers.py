"""Corrupt file bytes never give a traceback: the checkpoint loader and every modality's file
readers answer a damaged file (truncated, bytes flipped, garbage appended, random bytes) with a
one-line ``ValueError``, or — inside a folder dataset — skip and count it.

Each test starts from a real file written by the library it is read with, and hypothesis
damages its bytes; examples are bounded so the suite stays fast (``MAEFLOW_FUZZ_EXAMPLES=2000``
searches longer).
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import maeflow
from maeflow.checkpoint import read_file

FUZZ = settings(max_examples=int(os.environ.get("MAEFLOW_FUZZ_EXAMPLES", 25)), deadline=None, database=None,
                suppress_health_check=list(HealthCheck))  # fmt: skip


def damaged(data: bytes, keep: int = 0):
    """Bytes of ``data`` damaged one way or another; the first ``keep`` bytes are never flipped
    (see the audio test)."""

    def flip(edits):
        out = bytearray(data)
        for pos, value in edits:
            out[pos] = value
        return bytes(out)

    positions = st.integers(min(keep, len(data) - 1), len(data) - 1)
    return st.one_of(
        st.integers(0, len(data) - 1).map(lambda n: data[:n]),  # truncated
        st.lists(st.tuples(positions, st.integers(0, 255)), min_size=1, max_size=8).map(flip),  # flipped bytes
        st.tuples(st.integers(0, len(data)), st.binary(min_size=1, max_size=64)).map(
            lambda t: data[: t[0]] + t[1] + data[t[0] :]  # bytes inserted
        ),
        st.binary(max_size=256),  # not the format at all
    )


def _one_line(exc: BaseException) -> None:
    text = str(exc)
    assert text and "\n" not in text, f"not one line: {text!r}"
    assert "Traceback" not in text and "weights_only=False" not in text


# ------------------------------------------------------------------ checkpoints


def _saved_checkpoint(suffix: str) -> tuple[torch.nn.Module, bytes]:
    torch.manual_seed(0)
    model = maeflow.create_model("mae_vit_test", depth=1, decoder_depth=1)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"m{suffix}"
        if suffix == ".safetensors":
            maeflow.checkpoint.write_state_dict(maeflow.checkpoint.export_state_dict(model, "maeflow"), path)
        else:
            maeflow.save_model(model, path)
        return model, path.read_bytes()


_PT = _saved_checkpoint(".pt")
_ST = _saved_checkpoint(".safetensors")


def _load_damaged(model: torch.nn.Module, data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"ckpt{suffix}"
        path.write_bytes(data)
        try:
            read_file(path)
            maeflow.load_checkpoint(model, path)
        except ValueError as exc:
            _one_line(exc)


@FUZZ
@given(data=damaged(_PT[1]))
def test_damaged_pt_checkpoint_is_one_line_or_loads(data):
    _load_damaged(_PT[0], data, ".pt")


@FUZZ
@given(data=damaged(_ST[1]))
def test_damaged_safetensors_checkpoint_is_one_line_or_loads(data):
    _load_damaged(_ST[0], data, ".safetensors")


# ------------------------------------------------------------------ folder datasets


def _folder_case(build, good: bytes, bad: bytes, suffix: str, shape: tuple[int, ...]) -> None:
    """A folder of one good and one damaged file: built leniently, the damaged one is read or
    skipped and counted; built with ``strict=True``, it is read or a one-line ``ValueError``."""
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / f"good{suffix}").write_bytes(good)
        (root / f"bad{suffix}").write_bytes(bad)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the skip warning (and decoders' own) is the expected path
            ds = build(str(root), strict=False)
            items = [ds[i][0] for i in range(len(ds))]
            assert len(ds) + ds.num_skipped >= 2 and len(ds) >= 1
            assert all(tuple(x.shape) == shape for x in items)
            try:
                ds = build(str(root), strict=True)
                [ds[i] for i in range(len(ds))]
            except ValueError as exc:
                _one_line(exc)
                assert "bad" in str(exc)


def _png() -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(Path(d) / "x.png")
        return (Path(d) / "x.png").read_bytes()


def _jpeg() -> bytes:
    from PIL import Image

    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as d:
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(Path(d) / "x.jpg", quality=90)
        return (Path(d) / "x.jpg").read_bytes()


def _image_folder(root, strict):
    from maeflow_image.data import image_folder

    return image_folder("test", root=root, img_size=8, labels=False, strict=strict, crop_pct=1.0)


_IMAGES = {".png": _png(), ".jpg": _jpeg()}


@pytest.mark.parametrize("suffix", sorted(_IMAGES))
@FUZZ
@given(data=st.data())
def test_damaged_image_files_are_skipped_or_one_line(suffix, data):
    good = _IMAGES[suffix]
    _folder_case(_image_folder, good, data.draw(damaged(good)), suffix, (3, 8, 8))


@functools.lru_cache(maxsize=1)
def _video() -> bytes:
    av = pytest.importorskip("av")
    rng = np.random.default_rng(2)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.mp4"
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
            stream.options = {"preset": "ultrafast"}
            for _ in range(4):
                frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return path.read_bytes()


def _video_folder(root, strict):
    from maeflow_video.data import video_folder

    return video_folder("test", root=root, num_frames=2, stride=1, img_size=16, labels=False, strict=strict)


@FUZZ
@given(data=st.data())
def test_damaged_video_files_are_skipped_or_one_line(data):
    good = _video()
    _folder_case(_video_folder, good, data.draw(damaged(good)), ".mp4", (3, 2, 16, 16))


_AUDIO_SIZE = (16, 8)  # frames, mel bins


@functools.lru_cache(maxsize=2)
def _audio(fmt: str) -> bytes:
    import soundfile as sf

    t = np.arange(4000) / 16000
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"x.{fmt}"
        sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
        return path.read_bytes()


def _audio_folder(root, strict):
    from maeflow_audio.data import audio_folder

    return audio_folder("test", root=root, input_size=_AUDIO_SIZE, labels=False, strict=strict)


# Header bytes are not flipped: a damaged sample rate is still a valid header. Rates whose exact
# rational resampling filter would take gigabytes (16001 Hz) are refused in one line by the audio
# front end (tests/plugins/audio/test_frontend.py), but a tiny rate (1 Hz) upsamples a file
# 16000-fold — slow, not a traceback (truncation and random bytes still hit the headers).
_AUDIO_HEADER = {"wav": 44, "flac": 42}


@pytest.mark.parametrize("fmt", sorted(_AUDIO_HEADER))
@FUZZ
@given(data=st.data())
def test_damaged_audio_files_are_skipped_or_one_line(fmt, data):
    good = _audio(fmt)
    bad = data.draw(damaged(good, keep=_AUDIO_HEADER[fmt]))
    _folder_case(_audio_folder, good, bad, f".{fmt}", (1, *_AUDIO_SIZE))


# ------------------------------------------------------------------ point clouds


def _point_files() -> dict[str, bytes]:
    from maeflow_pointcloud.readers import write_ply

    rng = np.random.default_rng(3)
    pts = rng.uniform(-1, 1, (20, 3)).astype(np.float32)
    out = {}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        write_ply(d / "b.ply", pts, binary=True)
        write_ply(d / "a.ply", pts, binary=False)
        np.save(d / "x.npy", pts)
        (d / "x.xyz").write_text("".join(f"{x} {y} {z}\n" for x, y, z in pts))
        cube = [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
        quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
        (d / "x.off").write_text("OFF\n8 6 0\n" + "".join(f"{x} {y} {z}\n" for x, y, z in cube)
                                 + "".join(f"4 {a} {b} {c} {e}\n" for a, b, c, e in quads))  # fmt: skip
        (d / "x.obj").write_text("".join(f"v {x} {y} {z}\n" for x, y, z in cube)
                                 + "".join(f"f {a + 1} {b + 1} {c + 1} {e + 1}\n" for a, b, c, e in quads))  # fmt: skip
        for p in d.iterdir():
            out[p.name] = p.read_bytes()
    return out


_POINTS = _point_files()


@pytest.mark.parametrize("name", sorted(_POINTS))
@FUZZ
@given(data=st.data())
def test_damaged_point_files_are_one_line_errors(name, data):
    from maeflow_pointcloud.readers import read_points

    bad = data.draw(damaged(_POINTS[name]))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(bad)
        try:
            pts = read_points(path, num_mesh_points=64, generator=torch.Generator().manual_seed(0))
        except ValueError as exc:
            _one_line(exc)
            assert str(path) in str(exc)
            return
        assert pts.ndim == 2 and pts.shape[1] == 3 and pts.dtype == torch.float32 and torch.isfinite(pts).all()


@FUZZ
@given(data=st.data())
def test_damaged_point_files_in_a_folder_are_skipped_or_one_line(data):
    from maeflow_pointcloud.data import pointcloud_folder

    good = _POINTS["b.ply"]

    def build(root, strict):
        return pointcloud_folder("test", root=root, num_points=32, labels=False, strict=strict, mesh_points=64)

    _folder_case(build, good, data.draw(damaged(good)), ".ply", (32, 3))
