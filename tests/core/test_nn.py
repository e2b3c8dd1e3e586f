"""Shared nn: attention backends agree with math, sin-cos tables, blocks."""

import math

import pytest
import torch

from maeflow.nn import Block, attention, math_attention, resolve_backend, sincos_1d, sincos_2d, sincos_3d
from maeflow.nn.attention import xformers_available


def runnable_backends(device):
    names = ["math", "sdpa", "auto"]
    if device.type == "cuda" and xformers_available()[0]:
        names.append("xformers")
    return names


@pytest.mark.parametrize("shape", [(2, 3, 5, 8), (1, 2, 17, 16)])
def test_every_runnable_backend_agrees_with_math(shape):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(*shape, generator=g).to(device) for _ in range(3))
    ref = math_attention(q, k, v)
    for name in runnable_backends(device):
        out = attention(q, k, v, backend=name)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5, msg=f"backend {name}")


def test_masked_attention_agrees_with_math():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 6, 8, generator=g) for _ in range(3))
    mask = torch.rand(6, 6, generator=g) > 0.3
    mask |= torch.eye(6, dtype=torch.bool)
    torch.testing.assert_close(attention(q, k, v, "sdpa", mask), math_attention(q, k, v, mask), atol=1e-5, rtol=1e-5)


def test_math_attention_is_softmax_qk_v():
    q = torch.tensor([[[[1.0, 0.0]]]])
    k = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    v = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    w = torch.softmax(torch.tensor([1 / math.sqrt(2), 0.0]), 0)
    assert torch.allclose(math_attention(q, k, v)[0, 0, 0], w[0] * v[0, 0, 0] + w[1] * v[0, 0, 1])


def test_backend_resolution_on_cpu():
    cpu = torch.device("cpu")
    assert resolve_backend("auto", cpu) == "sdpa"
    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve_backend("xformers", cpu)
    with pytest.raises(ValueError, match="unknown attention backend 'flash'"):
        resolve_backend("flash", cpu)


def test_auto_falls_back_without_cuda_and_says_why():
    ok, reason = xformers_available()
    if not torch.cuda.is_available():
        assert not ok and "CUDA" in reason


def test_sincos_1d_values():
    table = sincos_1d(4, torch.arange(3))
    # omega = [1, 1/100]; first half sin, second half cos
    expect = torch.tensor([[math.sin(p), math.sin(p / 100), math.cos(p), math.cos(p / 100)] for p in range(3)])
    torch.testing.assert_close(table, expect)


def test_sincos_2d_puts_columns_first_like_the_reference():
    table = sincos_2d(8, (2, 3))  # tokens row-major over (h=2, w=3)
    assert table.shape == (6, 8)
    cols = torch.tensor([0, 1, 2, 0, 1, 2])
    rows = torch.tensor([0, 0, 0, 1, 1, 1])
    torch.testing.assert_close(table[:, :4], sincos_1d(4, cols))
    torch.testing.assert_close(table[:, 4:], sincos_1d(4, rows))


def test_sincos_3d_shapes_and_time_channels():
    table = sincos_3d(16, (2, 2, 3), temporal_dim=4)
    assert table.shape == (12, 16)
    torch.testing.assert_close(table[:6, :4], sincos_1d(4, torch.zeros(6)))  # t = 0
    torch.testing.assert_close(table[6:, 4:], sincos_2d(12, (2, 3)))
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d(6, (2, 2))


def test_block_is_pre_norm_residual_and_names_match_vit():
    blk = Block(16, 2, mlp_ratio=2.0, qkv_bias=False, norm_eps=1e-6)
    names = set(dict(blk.named_parameters()))
    expected = {"norm1.weight", "attn.qkv.weight", "attn.proj.weight", "norm2.weight", "mlp.fc1.weight", "mlp.fc2.bias"}
    assert expected <= names
    assert "attn.qkv.bias" not in names
    assert blk.norm1.eps == 1e-6 and blk.mlp.fc1.out_features == 32
    x = torch.randn(2, 5, 16)
    h = x + blk.attn(blk.norm1(x))
    torch.testing.assert_close(blk(x), h + blk.mlp(blk.norm2(h)))


def test_drop_path_zeroes_whole_samples_and_rescales_the_rest():
    from maeflow.nn import DropPath

    dp = DropPath(0.25).train()
    x = torch.ones(4000, 3, 5)
    torch.manual_seed(0)
    y = dp(x)
    per_sample = y.flatten(1)
    dropped = (per_sample == 0).all(1)
    kept = (per_sample == 1 / 0.75).all(1)
    assert bool((dropped | kept).all())  # each sample's branch is all dropped or all kept
    assert abs(dropped.float().mean().item() - 0.25) < 0.03
    assert abs(y.mean().item() - 1.0) < 0.05  # unbiased in expectation
    assert torch.equal(dp.eval()(x), x)  # identity at evaluation
    with pytest.raises(ValueError, match="drop-path probability"):
        DropPath(1.0)


def test_drop_path_rates_ramp_linearly_and_encoder_blocks_get_them():
    from maeflow import Encoder, FixedPosEmbed
    from maeflow.nn import DropPath, drop_path_rates

    assert drop_path_rates(0.1, 4) == pytest.approx([0.0, 0.1 / 3, 0.2 / 3, 0.1])
    assert drop_path_rates(0.1, 1) == [0.0]
    enc = Encoder(16, 3, 2, pos_embed=FixedPosEmbed(torch.zeros(5, 16)), drop_path_rate=0.2)
    assert isinstance(enc.blocks[0].drop_path, torch.nn.Identity)  # rate 0: no module at all
    assert [b.drop_path.p for b in enc.blocks[1:]] == pytest.approx([0.1, 0.2])
    assert all(isinstance(b.drop_path, DropPath) for b in enc.blocks[1:])
    plain = Encoder(16, 3, 2, pos_embed=FixedPosEmbed(torch.zeros(5, 16)))
    assert all(isinstance(b.drop_path, torch.nn.Identity) for b in plain.blocks)


def test_explicit_backends_never_consult_the_autotuner(monkeypatch):
    """The dispatch runs without the measuring module: only ``auto`` asks it."""
    from maeflow.nn import autotune

    def no_autotune(*args):
        raise AssertionError("an explicit backend must not measure")

    monkeypatch.setattr(autotune, "kernel_for", no_autotune)
    q = torch.randn(4, 8, 64, 32)  # large enough that ``auto`` would measure on CPU
    for name in ("sdpa", "math"):
        torch.testing.assert_close(attention(q, q, q, name), math_attention(q, q, q), atol=1e-5, rtol=1e-5)
    with pytest.raises(AssertionError, match="must not measure"):
        attention(q, q, q, "auto")


def test_auto_says_once_why_it_chose_sdpa(caplog):
    import importlib
    import logging

    A = importlib.import_module("maeflow.nn.attention")  # the module (maeflow.nn.attention is also a function)
    A._logged.clear()
    with caplog.at_level(logging.INFO, logger="maeflow.nn"):
        for _ in range(3):
            assert A.resolve_backend("auto", torch.device("cpu")) == "sdpa"
    lines = [r.getMessage() for r in caplog.records if "attention backend 'auto'" in r.getMessage()]
    assert len(lines) == 1 and "using sdpa" in lines[0] and "xformers" in lines[0]


def test_cpu_model_reads_cpuinfo_once_and_falls_back(monkeypatch, tmp_path):
    import builtins

    from maeflow.utils import sysinfo

    sysinfo.cpu_model.cache_clear()
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: Fake CPU 9000 @ 3.0GHz\nflags\t: avx\n")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: real_open(fake if p == "/proc/cpuinfo" else p, *a, **k))
    assert sysinfo.cpu_model() == "Fake CPU 9000 @ 3.0GHz"
    fake.unlink()
    assert sysinfo.cpu_model() == "Fake CPU 9000 @ 3.0GHz"  # cached: read once per process
    sysinfo.cpu_model.cache_clear()
    assert sysinfo.cpu_model()  # no /proc/cpuinfo: what platform knows, never empty
    sysinfo.cpu_model.cache_clear()
