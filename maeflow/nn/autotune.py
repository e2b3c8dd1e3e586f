"""Per-shape attention-kernel measurement, consulted by ``attention="auto"`` when enabled.

The dispatch (:mod:`maeflow.nn.attention`) asks :func:`kernel_for` which kernel to run for a
call shape. On CUDA the candidates are xformers (when its kernels load and pass the probe;
unmasked calls only) and SDPA's flash / memory-efficient / cuDNN kernels, each forced through
:func:`torch.nn.attention.sdpa_kernel`; on CPU, SDPA (PyTorch's CPU flash kernel) and the
math path. The first call of a shape runs a short micro-benchmark of every candidate (forward,
plus backward when gradients are needed); a kernel that cannot take the shape is skipped and
the log says why; if none works, plain SDPA. The choice is kept in memory and, unless
``MAEFLOW_ATTENTION_CACHE=0``, in a JSON file under ``$MAEFLOW_CACHE_DIR`` (default
``~/.cache/maeflow``) keyed by device name and library versions, so later runs reuse it without
measuring. Each choice is logged once. ``MAEFLOW_ATTENTION_AUTOTUNE=0`` switches the
measurement off (``auto`` then runs xformers on CUDA when it loads, else SDPA).

On CPU the key holds the CPU model and torch's thread count. Calls smaller than
:data:`CPU_MEASURE_MIN_WORK` (B·H·N·M·Dh) use SDPA unmeasured: there SDPA was 2× faster than
math (one thread, fwd+bwd) and the time is too short to measure reliably. For larger calls
the math path must beat SDPA by more than :data:`CPU_MATH_MARGIN` (10%) to be chosen, so that
noise on a busy machine does not flip the choice. Measured on a 2-core AVX-512 EPYC, fwd+bwd,
2 threads: fp32 — SDPA 24 ms vs math 38 ms at the MAE decoder shape (8, 16, 197, 32), math 2.1
vs 3.4 ms at the encoder shape (8, 12, 50, 64); bf16 — math 2.8–4× faster at both (SDPA's CPU
flash kernel is slow in bf16), which matters under ``train.precision: bf16`` (see
``benchmarks/README.md``).

The choice logic is testable without a GPU: :class:`KernelSelector` takes the timing function
and the candidate list as arguments.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from maeflow.nn.kernels import run_kernel, sdpa_backends, xformers_available
from maeflow.utils.sysinfo import cpu_model

log = logging.getLogger(__name__)


def enabled() -> bool:
    """Whether ``auto`` measures per shape (``MAEFLOW_ATTENTION_AUTOTUNE``, on unless ``0``/``off``)."""
    return os.environ.get("MAEFLOW_ATTENTION_AUTOTUNE", "1").strip().lower() not in ("0", "off", "false", "no")


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

    def __init__(self, timer: Timer, candidates: Callable[[ShapeKey], Iterable[str]],
                 cache_path: Path | None = None, context: str = "", margin: float = 0.0):  # fmt: skip
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
            log.info("attention 'auto' on %s (%s): %s (from cache %s)",
                     key.device, key.describe(), found.kernel, self.cache_path)  # fmt: skip
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
            log.info("attention 'auto' on %s (%s): %s [measured: %s]%s", key.device, key.describe(), choice.kernel,
                     measured, f" [not supported here: {skipped}]" if skipped else "")  # fmt: skip
        else:
            log.warning("attention 'auto' on %s (%s): no candidate kernel worked, falling back to plain SDPA [%s]",
                        key.device, key.describe(), skipped)  # fmt: skip
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
    """Kernels worth measuring on CUDA: xformers (when it loads; unmasked calls only) and SDPA's.
    (Why xformers is missing, when it is, the dispatch has logged once already.)"""
    ok, _ = xformers_available(device_index)
    return (["xformers"] if ok and key.mask == "none" else []) + list(sdpa_backends())


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


def cpu_device_name(threads: int | None = None) -> str:
    """The CPU's selector key: model name and torch's thread count (the choice depends on both)."""
    n = torch.get_num_threads() if threads is None else threads
    return f"CPU {cpu_model()}, {n} thread{'s' if n != 1 else ''}"


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


def kernel_for(device: str, dtype: str, bh: int, n: int, m: int, dh: int, grad: bool, mask: str) -> str:
    """The kernel for one call shape on ``device`` (``"cpu"`` or ``"cuda:<index>"``), measured on
    first use; plain values only, so the dispatch can call it while ``torch.compile`` traces."""
    if device == "cpu":
        if bh * n * m * dh < CPU_MEASURE_MIN_WORK:
            return "sdpa"
        key = ShapeKey(cpu_device_name(), dtype, bh_bucket(bh), n, m, dh, grad, mask)
        return cpu_selector().choose(key).kernel
    index = torch.device(device).index or 0
    key = ShapeKey(_device_name(index), dtype, bh_bucket(bh), n, m, dh, grad, mask)
    return cuda_selector(index).choose(key).kernel


def choices() -> dict[str, str]:
    """``{"<device>: <shape>": kernel}`` for every choice made in this process."""
    return {f"{key.device}: {key.describe()}": c.kernel for sel in _selectors.values() for key, c in sel.table.items()}


__all__ = [
    "CPU_MATH_MARGIN", "CPU_MEASURE_MIN_WORK", "Choice", "KernelSelector", "ShapeKey", "bh_bucket", "cache_file",
    "choices", "cpu_candidates", "cpu_device_name", "cpu_selector", "cpu_timer", "cuda_candidates", "cuda_selector",
    "cuda_timer", "enabled", "kernel_for", "shape_key", "timing_call",
]  # fmt: skip
