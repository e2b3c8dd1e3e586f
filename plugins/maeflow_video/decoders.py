"""Video decoders behind one choice, ``decoder``: ``"torchcodec"`` (PyTorch's decoder: frames
by index straight into a uint8 tensor; it needs FFmpeg's shared libraries on the machine),
``"pyav"`` (PyAV, frame by frame; its wheels bundle FFmpeg) or ``"auto"``: torchcodec where
it loads, else PyAV, said once per process in the log.

A source is a path or a binary file object (a shard member's bytes); both decoders take either.
"""

from __future__ import annotations

import functools
import io
import logging
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

DECODERS = ("auto", "torchcodec", "pyav")
_said: set[str] = set()


@functools.lru_cache(maxsize=1)
def torchcodec_problem() -> str | None:
    """Why torchcodec cannot decode here (None: it can)."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401 (loads its FFmpeg-linked core)
    except Exception as exc:  # ImportError, or OSError when no FFmpeg libraries are found
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{type(exc).__name__}: {first[:200]}"
    return None


def resolve_decoder(name: str) -> str:
    """``"torchcodec"`` or ``"pyav"`` for the setting ``name`` (see the module docstring)."""
    if name not in DECODERS:
        raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {name!r}")
    if name == "pyav":
        return "pyav"
    problem = torchcodec_problem()
    if problem is None:
        return "torchcodec"
    if name == "torchcodec":
        raise ValueError(f"decoder=torchcodec but torchcodec does not load ({problem}); install it with a matching "
                         "torch (pip install torchcodec) and FFmpeg's libraries, or use decoder=auto or pyav")
    if "auto" not in _said:
        _said.add("auto")
        log.info("video decoding with PyAV: torchcodec does not load (%s)", problem)
    return "pyav"


def reopenable(source: Any) -> str | bytes:
    """A path as a string, a file object as its bytes: something every open can start over."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, io.BytesIO):
        return source.getvalue()
    return source.read()


def torchcodec_clip(source: str | bytes, pick) -> torch.Tensor:
    """Frames ``pick(num_frames_in_video)`` of the first video stream as uint8 (T, H, W, 3)."""
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(source, dimension_order="NHWC", seek_mode="exact", num_ffmpeg_threads=1)
    n = decoder.metadata.num_frames
    if not n:
        raise ValueError("the video has no frames")
    idx = pick(int(n))
    unique = sorted(set(idx))
    frames = decoder.get_frames_at(indices=unique).data  # (U, H, W, 3)
    where = {f: i for i, f in enumerate(unique)}
    return frames[[where[i] for i in idx]]
