"""``attention='auto'``: per-shape kernel choice from a timing table, the JSON cache, fallbacks.

The selection logic runs here with injected timers (no GPU needed); the real CPU kernels are
used where they exist, so "not supported for this shape" is exercised for real.
"""

import importlib
import json
import logging
import time

import pytest
import torch

import maeflow.nn.autotune as T
from maeflow.nn.attention import attention, choose_kernel
from maeflow.nn.autotune import KernelSelector, ShapeKey, bh_bucket, cache_file, cuda_candidates, shape_key
from maeflow.nn.kernels import math_attention, run_kernel

ENC = ShapeKey("Fake GPU 80GB", "bfloat16", 4096, 50, 50, 64, True, "none")
DEC = ShapeKey("Fake GPU 80GB", "bfloat16", 4096, 197, 197, 32, True, "none")
# the shape dependence measured on an H100 (docs: shared/PERFORMANCE.md), in seconds
TABLE = {
    ENC: {"sdpa_flash": 0.51e-3, "sdpa_efficient": 0.42e-3, "sdpa_cudnn": 0.49e-3},
    DEC: {"sdpa_flash": 1.25e-3, "sdpa_efficient": 2.35e-3, "sdpa_cudnn": 1.10e-3},
}
SDPA_KERNELS = ["sdpa_flash", "sdpa_efficient", "sdpa_cudnn"]


class FakeTimer:
    """Looks times up in a table; a missing entry means "kernel not supported here"."""

    def __init__(self, table):
        self.table = table
        self.calls = []

    def __call__(self, kernel, key):
        self.calls.append((kernel, key))
        try:
            return self.table[key][kernel]
        except KeyError:
            raise RuntimeError(f"{kernel} does not support head dim {key.dh}") from None


def selector(timer, tmp_path=None, context="torch X", candidates=None):
    path = None if tmp_path is None else tmp_path / "attention_kernels.json"
    return KernelSelector(timer, candidates or (lambda key: SDPA_KERNELS), cache_path=path, context=context)


def test_picks_the_fastest_kernel_per_shape(caplog):
    timer = FakeTimer(TABLE)
    sel = selector(timer)
    with caplog.at_level(logging.INFO, logger="maeflow.nn"):
        enc, dec = sel.choose(ENC), sel.choose(DEC)
    assert enc.kernel == "sdpa_efficient" and dec.kernel == "sdpa_cudnn"
    assert enc.times_ms == pytest.approx({k: v * 1e3 for k, v in TABLE[ENC].items()})
    # each choice is logged once, with what was measured
    lines = [r.getMessage() for r in caplog.records]
    assert sum("sdpa_efficient [measured" in m and "N=50" in m for m in lines) == 1
    assert sum("sdpa_cudnn [measured" in m and "N=197" in m for m in lines) == 1


def test_measures_each_shape_once():
    timer = FakeTimer(TABLE)
    sel = selector(timer)
    for _ in range(3):
        sel.choose(ENC)
    assert len(timer.calls) == len(SDPA_KERNELS)


def test_unsupported_kernel_is_skipped_and_reported(caplog):
    table = {ENC: {"sdpa_flash": 0.5e-3, "sdpa_efficient": 0.9e-3}}  # no cuDNN entry: it raises
    sel = selector(FakeTimer(table))
    with caplog.at_level(logging.INFO, logger="maeflow.nn"):
        choice = sel.choose(ENC)
    assert choice.kernel == "sdpa_flash"
    assert "sdpa_cudnn" in choice.unsupported and "head dim 64" in choice.unsupported["sdpa_cudnn"]
    assert any("not supported here: sdpa_cudnn" in r.getMessage() for r in caplog.records)


def test_nothing_works_falls_back_to_plain_sdpa(caplog):
    sel = selector(FakeTimer({}))
    with caplog.at_level(logging.WARNING, logger="maeflow.nn"):
        choice = sel.choose(ENC)
    assert choice.kernel == "sdpa" and set(choice.unsupported) == set(SDPA_KERNELS)
    assert any("falling back to plain SDPA" in r.getMessage() for r in caplog.records)


def test_ties_go_to_the_first_listed_candidate():
    sel = selector(FakeTimer({ENC: {"xformers": 1e-3, "sdpa_flash": 1e-3}}),
                   candidates=lambda key: ["xformers", "sdpa_flash"])  # fmt: skip
    assert sel.choose(ENC).kernel == "xformers"


def test_json_cache_is_reused_across_processes(tmp_path):
    first = selector(FakeTimer(TABLE), tmp_path)
    first.choose(ENC)
    first.choose(DEC)
    data = json.loads((tmp_path / "attention_kernels.json").read_text())
    section = data["entries"]["Fake GPU 80GB|torch X"]
    assert section[ENC.as_str()]["kernel"] == "sdpa_efficient"

    # a new process: same device and versions -> nothing is measured
    again = FakeTimer(TABLE)
    second = selector(again, tmp_path)
    assert second.choose(ENC).kernel == "sdpa_efficient" and second.choose(DEC).kernel == "sdpa_cudnn"
    assert again.calls == []

    # other library versions -> measured afresh, and both sections are kept
    other = FakeTimer({ENC: {"sdpa_flash": 0.1e-3}})
    third = selector(other, tmp_path, context="torch Y")
    assert third.choose(ENC).kernel == "sdpa_flash" and len(other.calls) == len(SDPA_KERNELS)
    data = json.loads((tmp_path / "attention_kernels.json").read_text())
    assert set(data["entries"]) == {"Fake GPU 80GB|torch X", "Fake GPU 80GB|torch Y"}


def test_corrupt_cache_is_ignored_with_a_warning(tmp_path, caplog):
    (tmp_path / "attention_kernels.json").write_text("{not json")
    timer = FakeTimer(TABLE)
    with caplog.at_level(logging.WARNING, logger="maeflow.nn"):
        assert selector(timer, tmp_path).choose(ENC).kernel == "sdpa_efficient"
    assert any("ignoring attention kernel cache" in r.getMessage() for r in caplog.records)
    assert json.loads((tmp_path / "attention_kernels.json").read_text())["version"] == 1  # rewritten


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MAEFLOW_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MAEFLOW_ATTENTION_CACHE", raising=False)
    assert cache_file() == tmp_path / "attention_kernels.json"
    monkeypatch.setenv("MAEFLOW_ATTENTION_CACHE", "0")
    assert cache_file() is None


def test_bh_bucket_and_shape_key():
    assert [bh_bucket(n) for n in (1, 2, 3, 96, 3072, 4096)] == [1, 2, 4, 128, 4096, 4096]
    q = torch.randn(3, 4, 10, 8, requires_grad=True)
    k = torch.randn(3, 4, 7, 8)
    key = shape_key(q, k, None, "dev")
    assert (key.bh, key.n, key.m, key.dh, key.grad, key.mask, key.dtype) == (16, 10, 7, 8, True, "none", "float32")
    with torch.no_grad():
        assert not shape_key(q, k, None, "dev").grad
    assert shape_key(q, k, torch.ones(10, 7, dtype=torch.bool), "dev").mask == "bool"
    assert shape_key(q, k, torch.zeros(10, 7), "dev").mask == "float"


def cpu_timer(kernel, key, reps=2):
    """A real timer on CPU tensors: SDPA's CUDA-only kernels raise here."""
    q, k, v = (torch.randn(key.bh, 1, n, key.dh, requires_grad=key.grad) for n in (key.n, key.m, key.m))
    run_kernel(kernel, q, k, v)
    t0 = time.perf_counter()
    for _ in range(reps):
        run_kernel(kernel, q, k, v).sum().backward()
    return (time.perf_counter() - t0) / reps


def test_real_kernels_not_available_on_cpu_are_skipped():
    key = ShapeKey("cpu", "float32", 4, 9, 9, 8, True, "none")
    sel = KernelSelector(cpu_timer, lambda key: ["sdpa_efficient", "sdpa_cudnn", "sdpa_flash", "math"])
    choice = sel.choose(key)
    assert set(choice.unsupported) == {"sdpa_efficient", "sdpa_cudnn"}
    assert set(choice.times_ms) == {"sdpa_flash", "math"} and choice.kernel in ("sdpa_flash", "math")


def test_cuda_candidates_without_xformers_are_the_sdpa_kernels():
    # on a machine where xformers cannot load (no CUDA here), only SDPA's kernels are candidates
    names = cuda_candidates(ENC)
    assert "xformers" not in names and {"sdpa_flash", "sdpa_efficient"} <= set(names)


@pytest.mark.parametrize("kernel", ["sdpa", "sdpa_flash", "math"])
def test_kernels_agree_with_math(kernel):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 11, 8, generator=g) for _ in range(3))
    torch.testing.assert_close(run_kernel(kernel, q, k, v), math_attention(q, k, v), atol=1e-5, rtol=1e-5)


def test_auto_on_cpu_small_calls_are_sdpa_unmeasured(monkeypatch):
    def no_selector():
        raise AssertionError("a call below CPU_MEASURE_MIN_WORK must not be measured")

    monkeypatch.setattr(T, "cpu_selector", no_selector)
    q = torch.randn(2, 3, 11, 8)
    assert 2 * 3 * 11 * 11 * 8 < T.CPU_MEASURE_MIN_WORK
    assert choose_kernel(q, q) == "sdpa"


def test_margin_keeps_the_default_unless_clearly_beaten():
    key = ShapeKey("CPU Fake, 2 threads", "float32", 128, 197, 197, 32, True, "none")
    close = FakeTimer({key: {"sdpa": 10e-3, "math": 9.5e-3}})  # math 5% faster: not enough
    assert KernelSelector(close, lambda k: ["sdpa", "math"], margin=0.1).choose(key).kernel == "sdpa"
    clear = FakeTimer({key: {"sdpa": 10e-3, "math": 7e-3}})  # 30% faster
    assert KernelSelector(clear, lambda k: ["sdpa", "math"], margin=0.1).choose(key).kernel == "math"
    # without a margin the fastest wins, as on CUDA
    assert KernelSelector(close, lambda k: ["sdpa", "math"]).choose(key).kernel == "math"


@pytest.mark.parametrize("winner", ["math", "sdpa"])
def test_auto_on_cpu_large_calls_use_the_measured_kernel(monkeypatch, winner):
    """Above the size threshold the CPU selector (keyed by CPU model and thread count) decides,
    and the call runs the kernel it chose."""
    A = importlib.import_module("maeflow.nn.attention")  # the module (maeflow.nn.attention is also a function)
    q = torch.randn(4, 8, 64, 32, requires_grad=True)  # B·H·N·M·Dh = 4.2 M
    assert 4 * 8 * 64 * 64 * 32 >= T.CPU_MEASURE_MIN_WORK
    key = ShapeKey(T.cpu_device_name(), "float32", 32, 64, 64, 32, True, "none")
    times = {"sdpa": 1e-3, "math": 0.5e-3} if winner == "math" else {"sdpa": 1e-3, "math": 2e-3}
    sel = KernelSelector(FakeTimer({key: times}), T.cpu_candidates, margin=T.CPU_MATH_MARGIN)
    monkeypatch.setattr(T, "cpu_selector", lambda: sel)
    ran = []
    real = A.run_kernel
    monkeypatch.setattr(A, "run_kernel", lambda kernel, *a, **kw: ran.append(kernel) or real(kernel, *a, **kw))
    out = attention(q, q, q, "auto")
    assert ran == [winner] and sel.table[key].kernel == winner
    torch.testing.assert_close(out, math_attention(q, q, q), atol=1e-5, rtol=1e-5)


def test_cpu_timer_measures_both_real_kernels():
    key = ShapeKey(T.cpu_device_name(1), "bfloat16", 8, 40, 40, 16, True, "none")
    assert T.cpu_device_name(1).endswith(", 1 thread") and T.cpu_device_name(2).endswith(", 2 threads")
    sel = KernelSelector(T.cpu_timer(warmup=0, reps=1), T.cpu_candidates, margin=T.CPU_MATH_MARGIN)
    choice = sel.choose(key)
    assert set(choice.times_ms) == {"sdpa", "math"} and all(t > 0 for t in choice.times_ms.values())
    assert choice.kernel in ("sdpa", "math") and not choice.unsupported


def test_auto_on_cpu_is_sdpa_and_matches_math():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 11, 8, generator=g) for _ in range(3))
    assert choose_kernel(q, k) == "sdpa"
    torch.testing.assert_close(attention(q, k, v, "auto"), math_attention(q, k, v), atol=1e-5, rtol=1e-5)
    mask = torch.rand(11, 11, generator=g) > 0.3
    mask.fill_diagonal_(True)
    torch.testing.assert_close(attention(q, k, v, "auto", mask), math_attention(q, k, v, mask), atol=1e-5, rtol=1e-5)


def test_choice_is_made_outside_the_graph_while_compiling(monkeypatch):
    """Under torch.compile the decision runs at trace time (real timing on real tensors) and its
    answer is a constant in the graph: one graph, no break, the chosen kernel inside."""
    A = importlib.import_module("maeflow.nn.attention")  # the module (maeflow.nn.attention is also a function)
    q = torch.randn(4, 8, 64, 32)  # above CPU_MEASURE_MIN_WORK: the CPU selector decides
    key = ShapeKey(T.cpu_device_name(), "float32", 32, 64, 64, 32, False, "none")
    timer = FakeTimer({key: {"sdpa": 2e-3, "math": 1e-3}})
    sel = KernelSelector(timer, T.cpu_candidates, margin=T.CPU_MATH_MARGIN)
    monkeypatch.setattr(T, "cpu_selector", lambda: sel)
    traced = []
    real = A.run_kernel
    monkeypatch.setattr(A, "run_kernel", lambda kernel, *a, **kw: traced.append(kernel) or real(kernel, *a, **kw))

    torch._dynamo.reset()
    out = torch.compile(lambda q: attention(q, q, q, "auto"), backend="eager", fullgraph=True)(q)
    assert traced == ["math"] and len(timer.calls) == 2  # decided once, at trace time
    torch.testing.assert_close(out, math_attention(q, q, q))


def test_autotune_can_be_switched_off(monkeypatch):
    """MAEFLOW_ATTENTION_AUTOTUNE=0: auto is the family choice (SDPA here), nothing is measured."""

    def no_selector():
        raise AssertionError("the autotuner is off")

    monkeypatch.setattr(T, "cpu_selector", no_selector)
    monkeypatch.setenv("MAEFLOW_ATTENTION_AUTOTUNE", "0")
    q = torch.randn(4, 8, 64, 32)
    assert choose_kernel(q, q) == "sdpa"


def test_auto_under_dynamic_shapes_specializes_the_attention_sizes():
    """With ``dynamic=True`` the sizes reach the decision as constants: one graph, no break."""
    import maeflow

    torch._dynamo.reset()
    block = maeflow.nn.Block(16, 2, attention="auto")
    compiled = torch.compile(block, backend="eager", fullgraph=True, dynamic=True)
    for batch in (4, 6):
        x = torch.randn(batch, 5, 16)
        torch.testing.assert_close(compiled(x), block(x))
