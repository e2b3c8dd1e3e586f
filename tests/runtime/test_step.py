"""pretrain_step: accumulation, non-finite losses, clipping, stop flag; Precision and the device resolver."""

import pytest
import torch

import maeflow
from maeflow.runtime import Precision, Strategy, build_optimizer, pretrain_step, resolve_device

CPU = torch.device("cpu")


def _setup(seed=0):
    torch.manual_seed(seed)
    model = maeflow.create_model("mae_vit_test")
    return model, build_optimizer(model, 1e-3, 0.05, fused=False)


def _inputs(n=8):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def test_two_micro_batches_step_like_one_batch():
    x = _inputs()
    seeds = list(range(100, 108))  # per-sample masks: the same samples get the same masks either way
    full, opt_full = _setup()
    out = pretrain_step(full, opt_full, [(x, seeds)], Precision("fp32", CPU))
    acc, opt_acc = _setup()
    out2 = pretrain_step(acc, opt_acc, iter([(x[:4], seeds[:4]), (x[4:], seeds[4:])]), Precision("fp32", CPU),
                         accum=2)  # fmt: skip
    assert out.finite and out.stop is False and out.grad_norm is None
    assert out2.loss == pytest.approx(out.loss, rel=1e-5)
    for (name, a), b in zip(full.named_parameters(), acc.parameters(), strict=True):
        if not name.endswith("attn.qkv.bias"):  # Adam's first step moves ±lr on rounding noise of ~0 grads
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)
        assert a.grad is None and b.grad is None  # zero_grad after the step


def test_nonfinite_loss_skips_the_update_and_clip_reports_the_norm():
    model, opt = _setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = _inputs(4)
    x[0] = float("nan")
    out = pretrain_step(model, opt, [(x, None)], Precision("auto", CPU), clip_grad=1.0)
    assert not out.finite and out.grad_norm is None
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    out = pretrain_step(model, opt, [(_inputs(4), 3)], Precision("auto", CPU), clip_grad=1e-3, stop=True)
    assert out.finite and out.grad_norm > 1e-3 and out.stop  # the norm before clipping
    with pytest.raises(ValueError, match="expected accum=2"):
        pretrain_step(model, opt, iter([(x, None)]), Precision("fp32", CPU), accum=2)


def test_precision_and_device():
    p = Precision("auto", CPU)
    assert p.name == "fp32" and p.dtype == torch.float32 and not p.scaler.is_enabled()
    bf16 = Precision("bf16", CPU)
    with bf16.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        Precision("fp16", CPU)
    with pytest.raises(ValueError, match="precision must be"):
        Precision("fp8", CPU)
    assert resolve_device("cpu") == CPU and resolve_device(CPU) == CPU
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda:1")


def test_single_process_strategy_is_a_pass_through():
    s = Strategy("fsdp", CPU)  # a world of one: no wrapping, whatever the engine
    model, opt = _setup()
    assert s.kind == "single" and s.wrap(model) is model and s.gather_object(1) == [1]
    with s.grad_sync(model, enabled=False):
        pass
    state = s.model_state(model)
    assert all(v.device == CPU for v in state.values())
    s.load_state(model, opt, state, s.optimizer_state(model, opt))
    with pytest.raises(ValueError, match="ddp or fsdp"):
        Strategy("horovod")
