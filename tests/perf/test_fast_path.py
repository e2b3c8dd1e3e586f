"""The fast path gives the same training step as the eager fp32 math-attention reference.

Fast path = what ``train.compile`` / ``train.attention`` / the fused optimizer switch on:
SDPA kernels through ``attention='auto'``, ``torch.compile`` of the encoder and decoder (as the
trainer does), fused AdamW. Reference = eager, fp32, ``attention='math'``. Same weights, batch
and masking noise; loss, every gradient and the parameters after one optimizer step must agree.
"""

import copy

import pytest
import torch

import maeflow
from maeflow.nn import set_attention_backend


def tiny_setup(seed=0, batch=4):
    torch.manual_seed(seed)
    model = maeflow.create_model("mae_vit_test", attention="math").train()
    g = torch.Generator().manual_seed(seed + 1)
    x = model.tokenizer.example_inputs(batch, generator=g)
    noise = torch.rand(batch, model.tokenizer.num_tokens, generator=g)
    return model, x, noise


def loss_and_grads(model, x, noise):
    model.zero_grad(set_to_none=True)
    loss = model(x, noise=noise).loss
    loss.backward()
    return loss.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def assert_same_step(ref, fast, rtol, atol):
    (l0, g0), (l1, g1) = ref, fast
    torch.testing.assert_close(l1, l0, rtol=rtol, atol=atol)
    assert g0.keys() == g1.keys()
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=rtol, atol=atol, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("backend", ["auto", "sdpa"])
def test_sdpa_kernels_match_eager_math(backend):
    ref_model, x, noise = tiny_setup()
    fast_model = copy.deepcopy(ref_model)
    assert set_attention_backend(fast_model, backend) == 3  # 2 encoder + 1 decoder blocks
    assert_same_step(loss_and_grads(ref_model, x, noise), loss_and_grads(fast_model, x, noise), 1e-5, 1e-6)


def test_fused_adamw_matches_the_reference_update():
    """Fused AdamW against the for-loop reference on the same gradients (the kernels' own
    differences are covered above; Adam would magnify them where a gradient is exactly zero in
    exact arithmetic, such as the key bias)."""
    ref_model, x, noise = tiny_setup()
    set_attention_backend(ref_model, "auto")
    fast_model = copy.deepcopy(ref_model)
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.05, **kw)
            for m, kw in ((ref_model, {"foreach": False}), (fast_model, {"fused": True}))]  # fmt: skip
    for _ in range(3):
        _, grads = loss_and_grads(ref_model, x, noise)
        for p, g in zip(fast_model.parameters(), grads.values(), strict=True):
            p.grad = g.clone()
        for opt in opts:
            opt.step()
    for (name, p0), p1 in zip(ref_model.named_parameters(), fast_model.parameters(), strict=True):
        torch.testing.assert_close(p1, p0, rtol=1e-6, atol=1e-7, msg=lambda m, n=name: f"{n}: {m}")


def test_auto_attention_traces_without_graph_breaks():
    """Dynamo traces a block with ``attention='auto'`` as one graph (the kernel choice is a
    lookup, not a measurement, while tracing); the backend 'eager' keeps this fast."""
    torch._dynamo.reset()
    block = maeflow.nn.Block(16, 2, attention="auto")
    x = torch.randn(2, 5, 16, requires_grad=True)
    compiled = torch.compile(block, backend="eager", fullgraph=True)
    out = compiled(x)
    out.sum().backward()
    torch.testing.assert_close(out, block(x))


@pytest.mark.slow
def test_compiled_model_matches_eager_math():
    """``torch.compile`` of the encoder and decoder (inductor, as ``train.compile`` does) with
    SDPA attention against the eager math reference: same loss and gradients."""
    torch._dynamo.reset()
    ref_model, x, noise = tiny_setup()
    fast_model = copy.deepcopy(ref_model)
    set_attention_backend(fast_model, "auto")
    fast_model.encoder.compile()
    fast_model.decoder.compile()
    ref = loss_and_grads(ref_model, x, noise)
    for _ in range(2):  # the second call runs the cached graphs
        assert_same_step(ref, loss_and_grads(fast_model, x, noise), 1e-4, 1e-5)


@pytest.mark.parametrize("backend", ["math", "sdpa"])
def test_bf16_autocast_step_on_cpu_tracks_fp32(backend):
    """``train.precision: bf16`` on a CPU (what the CPU speed comparison runs, with either kernel
    ``auto`` may pick): loss and gradients stay within bf16 tolerance of the fp32 reference."""
    ref_model, x, noise = tiny_setup(seed=3)
    fast_model = copy.deepcopy(ref_model)
    set_attention_backend(fast_model, backend)
    ref = loss_and_grads(ref_model, x, noise)
    fast_model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = fast_model(x, noise=noise).loss
    assert loss.dtype == torch.float32  # loss and target normalization stay fp32
    loss.backward()
    torch.testing.assert_close(loss.detach(), ref[0], rtol=2e-2, atol=0)
    for name, p in fast_model.named_parameters():
        g0, g1 = ref[1][name].flatten(), p.grad.flatten()
        assert p.grad.dtype == torch.float32, name
        if g0.norm() > 1e-6:  # direction and size of every non-vanishing gradient
            cos = torch.nn.functional.cosine_similarity(g0, g1, dim=0)
            assert cos > 0.98, (name, float(cos))
            assert abs(g1.norm() / g0.norm() - 1) < 0.05, name
