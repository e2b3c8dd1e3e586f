"""The attention kernels themselves, each callable by name.

Every kernel takes ``q, k, v`` shaped ``(B, H, N, Dh)`` (keys and values ``(B, H, M, Dh)``) and
returns ``(B, H, N, Dh)``. ``attn_mask``, broadcastable to ``(B, H, N, M)``, is boolean
(True = may attend) or additive. The dispatch (:mod:`maeflow.nn.attention`) and the autotuner
(:mod:`maeflow.nn.autotune`) both run kernels through :func:`run_kernel`.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

# "sdpa" is PyTorch's own dispatch among its kernels; "sdpa_*" force one of them
KERNELS: tuple[str, ...] = ("xformers", "sdpa_flash", "sdpa_efficient", "sdpa_cudnn", "sdpa", "math")


def math_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask=None) -> torch.Tensor:
    """The reference: softmax(q kᵀ / √Dh) v in plain tensor ops."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = (q * scale) @ k.transpose(-2, -1)  # (B, H, N, M)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    return scores.softmax(dim=-1) @ v


def xformers_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``xformers.ops.memory_efficient_attention``, unmasked (maeflow never passes it a bias)."""
    import xformers.ops as xops

    # xformers wants (B, N, H, Dh)
    out = xops.memory_efficient_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2)


@functools.cache
def xformers_available(device_index: int = 0) -> tuple[bool, str]:
    """Whether xformers' CUDA kernels load and agree with the math path on a tiny input.

    Returns ``(ok, reason)``; the probe runs once per process and device. The reason matters:
    a PyPI xformers wheel built for another PyTorch imports but cannot run its kernels.
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
        out = xformers_attention(q, k, v)
        ref = math_attention(q.float(), k.float(), v.float())
        if not torch.allclose(out.float(), ref, atol=1e-2, rtol=1e-2):
            return False, "xformers probe gave results different from the math path"
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return False, f"xformers kernels failed the probe ({first})"
    return True, "xformers kernels loaded and passed the probe"


def sdpa_backends() -> dict[str, object]:
    """``{"sdpa_flash": SDPBackend.FLASH_ATTENTION, ...}``: SDPA's kernels this PyTorch has."""
    from torch.nn.attention import SDPBackend

    table = {"sdpa_flash": SDPBackend.FLASH_ATTENTION, "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION}
    if hasattr(SDPBackend, "CUDNN_ATTENTION"):
        table["sdpa_cudnn"] = SDPBackend.CUDNN_ATTENTION
    return table


def run_kernel(kernel: str, q, k, v, attn_mask=None) -> torch.Tensor:
    """Attention with one named kernel from :data:`KERNELS`; raises if it cannot take the call."""
    if kernel == "math":
        return math_attention(q, k, v, attn_mask)
    if kernel == "xformers":
        if attn_mask is not None:
            raise RuntimeError("maeflow's xformers path takes no attention mask")
        return xformers_attention(q, k, v)
    if kernel == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    from torch.nn.attention import sdpa_kernel

    with sdpa_kernel([sdpa_backends()[kernel]]):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


__all__ = ["KERNELS", "math_attention", "run_kernel", "sdpa_backends", "xformers_attention", "xformers_available"]
