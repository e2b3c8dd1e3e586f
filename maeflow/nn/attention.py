"""One attention switch shared by every block in maeflow.

All attention goes through :func:`attention`, with ``q, k, v`` shaped ``(B, H, N, Dh)``
and the result shaped the same. The backend is chosen by name:

- ``"math"``: the reference softmax(q kᵀ / √Dh) v, in plain tensor ops;
- ``"sdpa"``: :func:`torch.nn.functional.scaled_dot_product_attention` (PyTorch's fused kernels);
- ``"xformers"``: ``xformers.ops.memory_efficient_attention`` (CUDA only);
- ``"auto"``: xformers on CUDA when its kernels load and pass a one-time probe, else SDPA.
  The choice is logged once per (device type, backend) pair.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Literal

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

AttentionBackend = Literal["auto", "xformers", "sdpa", "math"]
BACKENDS: tuple[str, ...] = ("auto", "xformers", "sdpa", "math")


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return name


def math_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask=None) -> torch.Tensor:
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = (q * scale) @ k.transpose(-2, -1)  # (B, H, N, M)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    return scores.softmax(dim=-1) @ v


def _xformers_attention(q, k, v, attn_mask=None):
    import xformers.ops as xops

    # xformers wants (B, N, H, Dh)
    out = xops.memory_efficient_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=attn_mask
    )
    return out.transpose(1, 2)


@functools.lru_cache(maxsize=None)
def xformers_available(device_index: int = 0) -> tuple[bool, str]:
    """Whether xformers' CUDA kernels load and agree with the math path on a tiny input.

    Returns ``(ok, reason)``; the probe runs once per process and device.
    """
    if not torch.cuda.is_available():
        return False, "no CUDA device"
    try:
        import xformers.ops  # noqa: F401
    except Exception as exc:  # ImportError, or a broken binary build
        return False, f"xformers does not import ({type(exc).__name__}: {exc})"
    try:
        dev = torch.device("cuda", device_index)
        g = torch.Generator(device=dev).manual_seed(0)
        q, k, v = (torch.randn(1, 2, 8, 16, device=dev, dtype=torch.float16, generator=g) for _ in range(3))
        out = _xformers_attention(q, k, v)
        ref = math_attention(q.float(), k.float(), v.float())
        if not torch.allclose(out.float(), ref, atol=1e-2, rtol=1e-2):
            return False, "xformers probe gave results different from the math path"
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return False, f"xformers kernels failed the probe ({first})"
    return True, "xformers kernels loaded and passed the probe"


_logged: set[tuple[str, str]] = set()


def _log_once(device_type: str, chosen: str, reason: str) -> None:
    key = (device_type, chosen)
    if key not in _logged:
        _logged.add(key)
        log.info("attention backend 'auto' on %s: using %s (%s)", device_type, chosen, reason)


def resolve_backend(backend: str, device: torch.device) -> str:
    """Turn ``auto`` into a concrete backend for ``device``; validate explicit choices."""
    check_backend(backend)
    if backend == "auto":
        if device.type == "cuda":
            ok, reason = xformers_available(device.index or 0)
            chosen = "xformers" if ok else "sdpa"
            _log_once("cuda", chosen, reason if ok else f"falling back to SDPA: {reason}")
            return chosen
        _log_once(device.type, "sdpa", "xformers has no CPU kernels")
        return "sdpa"
    if backend == "xformers" and device.type != "cuda":
        raise ValueError("attention='xformers' needs a CUDA device; use 'auto' or 'sdpa' on CPU")
    return backend


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    backend: str = "auto",
    attn_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scaled dot-product attention over ``(B, H, N, Dh)`` tensors.

    ``attn_mask`` (broadcastable to ``(B, H, N, M)``) is either boolean (True = may attend)
    or additive. The xformers path does not take a mask; masked calls use SDPA instead.
    """
    chosen = resolve_backend(backend, q.device)
    if chosen == "xformers" and attn_mask is None:
        return _xformers_attention(q, k, v)
    if chosen == "math":
        return math_attention(q, k, v, attn_mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
