"""One attention switch shared by every block in maeflow.

All attention goes through :func:`attention`, with ``q, k, v`` shaped ``(B, H, N, Dh)``
and the result shaped the same. The backend is chosen by name:

- ``"math"``: the reference softmax(q kᵀ / √Dh) v, in plain tensor ops;
- ``"sdpa"``: :func:`torch.nn.functional.scaled_dot_product_attention` (PyTorch's fused kernels,
  PyTorch's own choice among them);
- ``"xformers"``: ``xformers.ops.memory_efficient_attention`` (CUDA only);
- ``"auto"``: the fastest available kernel for each call shape.

What ``auto`` does
------------------
On CUDA it picks, per (device name, dtype, B·H bucket, N, M, Dh, mask kind, training or not),
among the kernels that are there: xformers when its kernels load and pass a one-time probe
(:func:`xformers_available`), and SDPA's flash / memory-efficient / cuDNN kernels, each forced
through :func:`torch.nn.attention.sdpa_kernel`. The first call of a shape runs a short
micro-benchmark of every candidate (forward, plus backward when gradients are needed); a
kernel that does not support the shape is skipped and the log says why. The choice is kept in
memory and, unless ``MAEFLOW_ATTENTION_CACHE=0``, in a JSON file under ``$MAEFLOW_CACHE_DIR``
(default ``~/.cache/maeflow``) keyed by device name and library versions, so later runs reuse
it without measuring. Each choice is logged once. If no candidate works, ``auto`` uses plain
SDPA (and says so). When xformers does not load, that is logged once as well.

On CPU ``auto`` chooses per shape between SDPA (PyTorch's CPU flash kernel) and the math path,
with the same selector, keyed by the CPU model and the thread count. Calls smaller than
:data:`CPU_MEASURE_MIN_WORK` (B·H·N·M·Dh) use SDPA without measuring: there SDPA was 2× faster
than math (one thread, fwd+bwd) and the time is too short to measure reliably. For larger calls
the math path must beat SDPA by more than :data:`CPU_MATH_MARGIN` (10%) to be chosen, so that
noise on a busy machine does not flip the choice. Measured on a 2-core AVX-512 EPYC, fwd+bwd,
2 threads: fp32 — SDPA 24 ms vs math 38 ms at the MAE decoder shape (8, 16, 197, 32), math 2.1
vs 3.4 ms at the encoder shape (8, 12, 50, 64); bf16 — math 2.8–4× faster at both (SDPA's CPU
flash kernel is slow in bf16), which matters under ``train.precision: bf16`` (see
``benchmarks/README.md``). ``attention='sdpa'`` keeps the fixed kernel.

``torch.compile``: the choice is made outside the graph. While dynamo traces, the selector is
called with plain values (device, dtype, sizes) through ``torch._dynamo.assume_constant_result``:
it runs eagerly at trace time — measuring on real tensors if the shape is new, or reading the
table — and its answer is a constant in the graph, so ``auto`` adds no graph break and the
compiled graph runs the chosen kernel (``sdpa_kernel`` traces). Under dynamic shapes (a
symbolic batch) ``auto`` compiles plain SDPA and leaves the choice to PyTorch.

The choice function is testable without a GPU: :class:`KernelSelector` takes the timing
function and the candidate list as arguments.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

AttentionBackend = Literal["auto", "xformers", "sdpa", "math"]
BACKENDS: tuple[str, ...] = ("auto", "xformers", "sdpa", "math")
# concrete kernels ``auto`` may pick; "sdpa" is PyTorch's own dispatch among its kernels
KERNELS: tuple[str, ...] = ("xformers", "sdpa_flash", "sdpa_efficient", "sdpa_cudnn", "sdpa", "math")


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
    out = xops.memory_efficient_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=attn_mask)
    return out.transpose(1, 2)


@functools.cache
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


_logged: set[tuple[str, ...]] = set()


def _log_once(key: tuple[str, ...], msg: str, *args) -> None:
    if key not in _logged:
        _logged.add(key)
        log.info(msg, *args)


def resolve_backend(backend: str, device: torch.device) -> str:
    """Turn ``auto`` into a backend family for ``device`` (``"xformers"`` when its kernels load on
    CUDA, else ``"sdpa"``); validate explicit choices. Per-shape kernel choice: :func:`choose_kernel`."""
    check_backend(backend)
    if backend == "auto":
        if device.type == "cuda":
            ok, reason = xformers_available(device.index or 0)
            chosen = "xformers" if ok else "sdpa"
            _log_once(
                ("family", "cuda", chosen),
                "attention backend 'auto' on cuda: %s available (%s)",
                "xformers and SDPA" if ok else "SDPA only",
                reason if ok else f"no xformers: {reason}",
            )
            return chosen
        _log_once(
            ("family", device.type, "sdpa"),
            "attention backend 'auto' on %s: using sdpa (%s)",
            device.type,
            "xformers has no CPU kernels; per call shape SDPA or the math path, whichever measures faster",
        )
        return "sdpa"
    if backend == "xformers" and device.type != "cuda":
        raise ValueError("attention='xformers' needs a CUDA device; use 'auto' or 'sdpa' on CPU")
    return backend


# ---------------------------------------------------------------------------------------------
# running one concrete kernel


def _sdpa_backends() -> dict[str, object]:
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
        return _xformers_attention(q, k, v)
    if kernel == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    from torch.nn.attention import sdpa_kernel

    with sdpa_kernel([_sdpa_backends()[kernel]]):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


# ---------------------------------------------------------------------------------------------
# per-shape choice


@dataclass(frozen=True)
class ShapeKey:
    """What a kernel choice depends on. ``bh`` is B·H rounded up to a power of two, so batch
    sizes close to each other share one measurement."""

    device: str  # device name, e.g. "NVIDIA H100 80GB HBM3"
    dtype: str  # "bfloat16", "float16", "float32"
    bh: int
    n: int  # query length
    m: int  # key/value length
    dh: int  # head dim
    grad: bool  # backward needed (training)
    mask: str  # "none", "bool" or "float"

    def as_str(self) -> str:
        return (
            f"{self.dtype}|bh{self.bh}|n{self.n}|m{self.m}|d{self.dh}|"
            f"{'train' if self.grad else 'infer'}|mask-{self.mask}"
        )

    def describe(self) -> str:
        return (
            f"{self.dtype}, B·H≤{self.bh}, N={self.n}, M={self.m}, Dh={self.dh}, "
            f"{'fwd+bwd' if self.grad else 'fwd'}{'' if self.mask == 'none' else ', ' + self.mask + ' mask'}"
        )


def bh_bucket(bh: int) -> int:
    return 1 << max(int(bh) - 1, 0).bit_length()


def shape_key(q: torch.Tensor, k: torch.Tensor, attn_mask: torch.Tensor | None, device_name: str) -> ShapeKey:
    B, H, N, Dh = q.shape
    grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad)
    mask = "none" if attn_mask is None else ("bool" if attn_mask.dtype == torch.bool else "float")
    return ShapeKey(device_name, str(q.dtype).removeprefix("torch."), bh_bucket(B * H), N, k.shape[-2], Dh, grad, mask)


@dataclass
class Choice:
    kernel: str
    times_ms: dict[str, float]  # measured candidates
    unsupported: dict[str, str]  # candidate -> why it was skipped

    def to_json(self) -> dict:
        return {"kernel": self.kernel, "times_ms": self.times_ms, "unsupported": self.unsupported}

    @classmethod
    def from_json(cls, d: dict) -> Choice:
        return cls(
            str(d["kernel"]),
            {k: float(v) for k, v in d.get("times_ms", {}).items()},
            {k: str(v) for k, v in d.get("unsupported", {}).items()},
        )


Timer = Callable[[str, ShapeKey], float]


class KernelSelector:
    """Chooses and remembers one kernel per :class:`ShapeKey`.

    ``timer(kernel, key) -> seconds`` measures one candidate (raising when the kernel cannot take
    the shape); ``candidates(key) -> kernel names`` lists what to try, in order of preference
    for ties. ``cache_path`` (or None) is a JSON file shared across runs; ``context`` names the
    library versions the measurements belong to (part of the file's key, with the device name).
    ``margin``: another kernel replaces the first listed (the default) only when it is faster by
    more than this fraction (0: the fastest wins).
    """

    def __init__(
        self,
        timer: Timer,
        candidates: Callable[[ShapeKey], Iterable[str]],
        cache_path: Path | None = None,
        context: str = "",
        margin: float = 0.0,
    ):
        self.timer = timer
        self.margin = margin
        self.candidates = candidates
        self.cache_path = cache_path
        self.context = context
        self.table: dict[ShapeKey, Choice] = {}
        self._file_loaded: set[str] = set()
        self._from_file: dict[str, dict[str, Choice]] = {}

    # the cache file: {"version": 1, "entries": {"<device>|<context>": {"<key.as_str()>": choice}}}
    def _file_section(self, device: str) -> str:
        return f"{device}|{self.context}"

    def _read_file(self) -> dict:
        if self.cache_path is None or not self.cache_path.exists():
            return {"version": 1, "entries": {}}
        try:
            data = json.loads(self.cache_path.read_text())
            if data.get("version") != 1 or not isinstance(data.get("entries"), dict):
                raise ValueError("unknown layout")
            return data
        except (OSError, ValueError) as exc:
            log.warning("ignoring attention kernel cache %s (%s)", self.cache_path, exc)
            return {"version": 1, "entries": {}}

    def _load(self, device: str) -> None:
        section = self._file_section(device)
        if section in self._file_loaded:
            return
        self._file_loaded.add(section)
        entries = self._read_file()["entries"].get(section, {})
        by_str = {}
        for key_str, d in entries.items():
            try:
                by_str[key_str] = Choice.from_json(d)
            except (KeyError, TypeError, ValueError):
                continue
        self._from_file[section] = by_str

    def _save(self, key: ShapeKey, choice: Choice) -> None:
        if self.cache_path is None:
            return
        from maeflow.utils.io import atomic_write

        data = self._read_file()  # re-read: another process may have added entries
        data["entries"].setdefault(self._file_section(key.device), {})[key.as_str()] = choice.to_json()
        try:
            atomic_write(self.cache_path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())
        except OSError as exc:
            log.warning("could not write attention kernel cache %s (%s)", self.cache_path, exc)

    def lookup(self, key: ShapeKey) -> Choice | None:
        """The choice already made for ``key`` (memory or cache file), measuring nothing."""
        if key in self.table:
            return self.table[key]
        self._load(key.device)
        found = self._from_file.get(self._file_section(key.device), {}).get(key.as_str())
        if found is not None:
            self.table[key] = found
            log.info(
                "attention 'auto' on %s (%s): %s (from cache %s)",
                key.device,
                key.describe(),
                found.kernel,
                self.cache_path,
            )
        return found

    def choose(self, key: ShapeKey) -> Choice:
        found = self.lookup(key)
        if found is not None:
            return found
        times, unsupported = {}, {}
        for kernel in self.candidates(key):
            try:
                times[kernel] = float(self.timer(kernel, key)) * 1e3
            except Exception as exc:  # the kernel cannot take this shape/dtype/device
                text = str(exc).strip()
                unsupported[kernel] = text.splitlines()[0][:200] if text else type(exc).__name__
        if times:
            best = min(times, key=lambda name: times[name])  # first listed wins ties
            default = next(iter(times))  # the first listed that ran
            if best != default and times[best] * (1.0 + self.margin) >= times[default]:
                best = default  # not faster by enough to leave the default
            choice = Choice(best, times, unsupported)
        else:
            choice = Choice("sdpa", times, unsupported)
        self.table[key] = choice
        measured = ", ".join(f"{k} {v:.3f} ms" for k, v in sorted(times.items(), key=lambda kv: kv[1]))
        skipped = "; ".join(f"{k}: {v}" for k, v in unsupported.items())
        if times:
            log.info(
                "attention 'auto' on %s (%s): %s [measured: %s]%s",
                key.device,
                key.describe(),
                choice.kernel,
                measured,
                f" [not supported here: {skipped}]" if skipped else "",
            )
        else:
            log.warning(
                "attention 'auto' on %s (%s): no candidate kernel worked, falling back to plain SDPA [%s]",
                key.device,
                key.describe(),
                skipped,
            )
        self._save(key, choice)
        return choice


# ---------------------------------------------------------------------------------------------
# the process-wide selector used on CUDA


def cache_file() -> Path | None:
    """``$MAEFLOW_CACHE_DIR/attention_kernels.json`` (default ``~/.cache/maeflow``); None when
    ``MAEFLOW_ATTENTION_CACHE`` is ``0``/``off``/``false``."""
    if os.environ.get("MAEFLOW_ATTENTION_CACHE", "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    root = os.environ.get("MAEFLOW_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "maeflow")
    return Path(root) / "attention_kernels.json"


def _versions() -> str:
    try:
        from importlib.metadata import version

        xf = version("xformers")
    except Exception:
        xf = "none"
    cuda = torch.version.cuda or "none"
    return f"torch {torch.__version__}|cuda {cuda}|xformers {xf}"


def cuda_candidates(key: ShapeKey, device_index: int = 0) -> list[str]:
    """Kernels worth measuring on CUDA: xformers (when it loads; unmasked calls only) and SDPA's."""
    names = []
    ok, reason = xformers_available(device_index)
    if ok and key.mask == "none":
        names.append("xformers")
    elif not ok:
        _log_once(
            ("xformers-missing", key.device),
            "attention 'auto': xformers not used (%s); choosing among SDPA kernels",
            reason,
        )
    return names + list(_sdpa_backends())


def timing_call(kernel: str, key: ShapeKey, device: torch.device) -> Callable[[], None]:
    """One call of ``kernel`` at ``key``'s shape on ``device`` (fwd, plus bwd when ``key.grad``)
    on fixed random inputs, for the timers; B·H = the bucket's size, split as (bucket // 8, 8)
    heads when possible."""
    dtype = getattr(torch, key.dtype)
    heads = 8 if key.bh % 8 == 0 else 1
    B = key.bh // heads
    g = torch.Generator(device=device).manual_seed(0)

    def randn(n):
        return torch.randn(B, heads, n, key.dh, device=device, dtype=dtype, generator=g)

    q, k, v = (randn(n).requires_grad_(key.grad) for n in (key.n, key.m, key.m))
    mask = None
    if key.mask == "bool":
        mask = torch.ones(key.n, key.m, device=device, dtype=torch.bool)
    elif key.mask == "float":
        mask = torch.zeros(key.n, key.m, device=device, dtype=dtype)
    grad_out = randn(key.n)

    def once() -> None:
        with torch.set_grad_enabled(key.grad):
            out = run_kernel(kernel, q, k, v, mask)
            if key.grad:
                torch.autograd.grad(out, (q, k, v), grad_out)

    return once


def cuda_timer(device_index: int = 0, warmup: int = 2, reps: int = 5) -> Timer:
    """Median time of one :func:`timing_call` on CUDA, by CUDA events."""

    def timer(kernel: str, key: ShapeKey) -> float:
        once = timing_call(kernel, key, torch.device("cuda", device_index))
        for _ in range(warmup):
            once()
        times = []
        for _ in range(reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            once()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        return statistics.median(times)

    return timer


_selectors: dict[int, KernelSelector] = {}


def cuda_selector(device_index: int = 0) -> KernelSelector:
    if device_index not in _selectors:
        _selectors[device_index] = KernelSelector(
            timer=cuda_timer(device_index),
            candidates=functools.partial(cuda_candidates, device_index=device_index),
            cache_path=cache_file(),
            context=_versions(),
        )
    return _selectors[device_index]


@functools.cache
def _device_name(device_index: int) -> str:
    return torch.cuda.get_device_name(device_index)


# ---------------------------------------------------------------------------------------------
# the process-wide selector used on CPU

CPU_MEASURE_MIN_WORK = 1 << 22  # B·H·N·M·Dh below which CPU calls use SDPA unmeasured
CPU_MATH_MARGIN = 0.10  # math must beat SDPA by more than this on CPU
CPU_SELECTOR = -1  # the key of the CPU selector in ``_selectors``


@functools.cache
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "cpu"


def cpu_device_name(threads: int | None = None) -> str:
    """The CPU's selector key: model name and torch's thread count (the choice depends on both)."""
    n = torch.get_num_threads() if threads is None else threads
    return f"CPU {_cpu_model()}, {n} thread{'s' if n != 1 else ''}"


def cpu_candidates(key: ShapeKey) -> list[str]:
    """On CPU: SDPA (PyTorch's CPU flash kernel; the default) and the math path."""
    return ["sdpa", "math"]


def cpu_timer(warmup: int = 1, reps: int = 5) -> Timer:
    """Shortest wall time of ``reps`` :func:`timing_call` s on the CPU, with the caller's thread
    count. The minimum, not the median: other processes on a shared machine only ever add time."""

    def timer(kernel: str, key: ShapeKey) -> float:
        import time

        once = timing_call(kernel, key, torch.device("cpu"))
        for _ in range(warmup):
            once()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            once()
            times.append(time.perf_counter() - t0)
        return min(times)

    return timer


def cpu_selector() -> KernelSelector:
    if CPU_SELECTOR not in _selectors:
        _selectors[CPU_SELECTOR] = KernelSelector(
            timer=cpu_timer(),
            candidates=cpu_candidates,
            cache_path=cache_file(),
            context=f"torch {torch.__version__}",
            margin=CPU_MATH_MARGIN,
        )
    return _selectors[CPU_SELECTOR]


def _is_compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling())


def _kernel_for_key(device_index: int, dtype: str, bh: int, n: int, m: int, dh: int, grad: bool, mask: str) -> str:
    """The chosen kernel; ``device_index`` is a CUDA index, or :data:`CPU_SELECTOR` for the CPU."""
    if device_index == CPU_SELECTOR:
        if bh * n * m * dh < CPU_MEASURE_MIN_WORK:
            return "sdpa"
        key = ShapeKey(cpu_device_name(), dtype, bh_bucket(bh), n, m, dh, grad, mask)
        return cpu_selector().choose(key).kernel
    key = ShapeKey(_device_name(device_index), dtype, bh_bucket(bh), n, m, dh, grad, mask)
    return cuda_selector(device_index).choose(key).kernel


# While dynamo traces a graph, the choice is made by calling the selector with plain values at
# trace time (measuring on real tensors if the shape is new) and baking the returned name into
# the graph as a constant: no graph break, and the compiled graph runs the measured kernel.
_kernel_while_tracing = getattr(torch._dynamo, "assume_constant_result", lambda fn: fn)(_kernel_for_key)


def choose_kernel(q: torch.Tensor, k: torch.Tensor, attn_mask: torch.Tensor | None = None) -> str:
    """The kernel ``auto`` uses for this call (see the module docstring)."""
    if q.device.type not in ("cuda", "cpu"):
        return "sdpa"
    if q.device.type == "cpu" and not _is_compiling():
        resolve_backend("auto", q.device)  # logs the CPU policy once
    B, H, N, Dh = q.shape
    bh = B * H
    grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad)
    mask = "none" if attn_mask is None else ("bool" if attn_mask.dtype == torch.bool else "float")
    dtype = str(q.dtype).removeprefix("torch.")
    if q.device.type == "cpu":
        index = CPU_SELECTOR
    else:
        index = q.device.index if q.device.index is not None else torch.cuda.current_device()
    if _is_compiling():
        if not isinstance(bh, int):  # a symbolic batch (dynamic shapes): PyTorch's own choice
            return "sdpa"
        return _kernel_while_tracing(index, dtype, bh, N, k.shape[-2], Dh, grad, mask)
    return _kernel_for_key(index, dtype, bh, N, k.shape[-2], Dh, grad, mask)


def attention_choices() -> dict[str, str]:
    """``{"<device>: <shape>": kernel}`` for every choice ``auto`` has made in this process
    (for run logs and benchmark reports)."""
    return {f"{key.device}: {key.describe()}": c.kernel for sel in _selectors.values() for key, c in sel.table.items()}


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
        if kernel in ("sdpa", "math"):
            return run_kernel(kernel, q, k, v, attn_mask)
        try:
            return run_kernel(kernel, q, k, v, attn_mask)
        except RuntimeError as exc:  # e.g. an input layout the benchmark did not see
            if _is_compiling():
                raise
            _log_once(
                ("runtime-fallback", kernel, str(q.dtype), str(tuple(q.shape))),
                "attention 'auto': %s failed at runtime for %s (%s); using plain SDPA",
                kernel,
                tuple(q.shape),
                str(exc).strip().splitlines()[0] if str(exc).strip() else exc,
            )
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    chosen = resolve_backend(backend, q.device)
    if chosen == "xformers" and attn_mask is None:
        return _xformers_attention(q, k, v)
    if chosen == "math":
        return math_attention(q, k, v, attn_mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


__all__ = [
    "BACKENDS",
    "KERNELS",
    "Choice",
    "KernelSelector",
    "ShapeKey",
    "attention",
    "bh_bucket",
    "cache_file",
    "check_backend",
    "choose_kernel",
    "cpu_candidates",
    "cpu_device_name",
    "cpu_selector",
    "cpu_timer",
    "math_attention",
    "resolve_backend",
    "run_kernel",
    "shape_key",
    "timing_call",
    "attention_choices",
    "xformers_available",
]
