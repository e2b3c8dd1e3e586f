"""One attention switch shared by every block in maeflow.

All attention goes through :func:`attention`, with ``q, k, v`` shaped ``(B, H, N, Dh)``
and the result shaped the same. The backend is chosen by name:

- ``"math"``: the reference softmax(q kᵀ / √Dh) v, in plain tensor ops;
- ``"sdpa"``: :func:`torch.nn.functional.scaled_dot_product_attention` (PyTorch's fused kernels,
  PyTorch's own choice among them);
- ``"xformers"``: ``xformers.ops.memory_efficient_attention`` (CUDA only);
- ``"auto"``: xformers on CUDA when its kernels load and pass a one-time probe
  (:func:`~maeflow.nn.kernels.xformers_available`), else SDPA; the log says once which and why
  (e.g. a PyPI xformers wheel built for another PyTorch imports but cannot run its kernels).
  Unless ``MAEFLOW_ATTENTION_AUTOTUNE=0``, ``auto`` then consults :mod:`maeflow.nn.autotune`,
  which measures the available kernels once per call shape and keeps the fastest.

The kernels themselves live in :mod:`maeflow.nn.kernels`.

``torch.compile``
-----------------
The decision (:func:`_decide`) takes plain values — device, dtype, sizes — and runs eagerly
even while dynamo traces: it probes xformers on the GPU, may time kernels on real tensors and
reads and writes a JSON file, none of which dynamo can trace, and a graph break at every
attention call would cut each block in two. So :func:`attention` checks
:func:`torch.compiler.is_compiling` once and, while tracing, calls the decision through
:func:`torch.compiler.assume_constant_result`: dynamo runs it at trace time and puts the kernel's
name into the graph as a constant, and the graph runs that kernel (``sdpa_kernel`` traces). A
new shape is a new trace (dynamo's shape guards), hence a new decision. The sizes go in through
:func:`operator.index`: under dynamic shapes that specializes the graph on the attention call's sizes (one
graph per batch size, as without dynamic shapes), since the kernel choice depends on them; a
size marked strictly dynamic (``torch._dynamo.mark_dynamic``) cannot be specialized, so use a
fixed ``attention`` backend there.
"""

from __future__ import annotations

import logging
import operator

import torch
import torch.nn.functional as F

from maeflow.nn.kernels import math_attention, run_kernel, xformers_attention, xformers_available

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("auto", "xformers", "sdpa", "math")


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return name


_logged: set[tuple[str, ...]] = set()


def _log_once(key: tuple[str, ...], msg: str, *args) -> None:
    if key not in _logged:
        _logged.add(key)
        log.info(msg, *args)


def resolve_backend(backend: str, device: torch.device) -> str:
    """Turn ``auto`` into a backend family for ``device`` (``"xformers"`` when its kernels load on
    CUDA, else ``"sdpa"``), saying once which and why; validate explicit choices."""
    check_backend(backend)
    if backend == "auto":
        if device.type == "cuda":
            ok, reason = xformers_available(device.index or 0)
            chosen = "xformers" if ok else "sdpa"
            _log_once(("family", "cuda", chosen), "attention backend 'auto' on cuda: %s (%s)",
                      "xformers, and SDPA where xformers cannot take the call" if ok else "SDPA, not xformers",
                      reason)  # fmt: skip
            return chosen
        _log_once(("family", device.type, "sdpa"), "attention backend 'auto' on %s: using sdpa (%s)",
                  device.type, "xformers has no kernels here")  # fmt: skip
        return "sdpa"
    if backend == "xformers" and device.type != "cuda":
        raise ValueError("attention='xformers' needs a CUDA device; use 'auto' or 'sdpa' on CPU")
    return backend


def _decide(device: str, dtype: str, bh: int, n: int, m: int, dh: int, grad: bool, mask: str) -> str:
    """The kernel ``auto`` runs for one call shape (plain values: see the module docstring)."""
    dev = torch.device(device)
    family = resolve_backend("auto", dev)
    if dev.type in ("cuda", "cpu"):
        from maeflow.nn import autotune

        if autotune.enabled():
            return autotune.kernel_for(device, dtype, bh, n, m, dh, grad, mask)
    return "xformers" if family == "xformers" and mask == "none" else "sdpa"


_decide_while_tracing = torch.compiler.assume_constant_result(_decide)


def choose_kernel(q: torch.Tensor, k: torch.Tensor, attn_mask: torch.Tensor | None = None) -> str:
    """The kernel ``auto`` uses for this call."""
    B, H, N, Dh = q.shape
    sizes = (B * H, N, k.shape[-2], Dh)
    grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad)
    mask = "none" if attn_mask is None else ("bool" if attn_mask.dtype == torch.bool else "float")
    dtype = str(q.dtype).removeprefix("torch.")
    device = "cpu" if q.device.type == "cpu" else str(q.device)
    if q.device.type == "cuda" and q.device.index is None:
        device = f"cuda:{torch.cuda.current_device()}"
    if not torch.compiler.is_compiling():
        return _decide(device, dtype, *sizes, grad, mask)
    # operator.index: a size dynamo traces as symbolic becomes a constant of this graph (a guard)
    bh, n, m, dh = (operator.index(s) for s in sizes)
    return _decide_while_tracing(device, dtype, bh, n, m, dh, grad, mask)


def attention_choices() -> dict[str, str]:
    """``{"<device>: <shape>": kernel}`` for every choice the autotuner has made in this process
    (for run logs and benchmark reports); empty when it never ran."""
    from maeflow.nn import autotune

    return autotune.choices()


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
    if backend == "auto":
        kernel = choose_kernel(q, k, attn_mask)
        if kernel in ("sdpa", "math") or torch.compiler.is_compiling():
            return run_kernel(kernel, q, k, v, attn_mask)
        try:
            return run_kernel(kernel, q, k, v, attn_mask)
        except RuntimeError as exc:  # e.g. an input layout the measurement did not see
            _log_once(("runtime-fallback", kernel, str(q.dtype), str(tuple(q.shape))),
                      "attention 'auto': %s failed at runtime for %s (%s); using plain SDPA", kernel, tuple(q.shape),
                      str(exc).strip().splitlines()[0] if str(exc).strip() else exc)  # fmt: skip
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    chosen = resolve_backend(backend, q.device)
    if chosen == "xformers" and attn_mask is None:
        return xformers_attention(q, k, v)
    if chosen == "math":
        return math_attention(q, k, v, attn_mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


__all__ = [
    "BACKENDS",
    "attention",
    "attention_choices",
    "check_backend",
    "choose_kernel",
    "math_attention",
    "resolve_backend",
    "run_kernel",
    "xformers_available",
]
