"""The conformance suite every registered component passes.

Each ``check_*`` raises ``AssertionError`` with a message on failure. maeflow's own test suite
runs them over the whole registry (tests/test_conformance.py); a third-party plugin can do the
same for its components::

    from maeflow.testing import check_model
    def test_my_model():
        check_model(maeflow.create_model("my_modality_test"))
"""

from __future__ import annotations

import torch

from maeflow.interfaces import MaskInfo, Tokens


def _finite(t: torch.Tensor, what: str) -> None:
    assert torch.isfinite(t).all(), f"{what} has NaN or inf values"


def check_tokenizer(tokenizer, batch_size: int = 2) -> Tokens:
    """Shapes of :class:`Tokens`, ``untokenize`` round trip where it exists, gradients flow."""
    g = torch.Generator().manual_seed(0)
    x = tokenizer.example_inputs(batch_size, generator=g)
    tokens = tokenizer(x)
    assert isinstance(tokens, Tokens), f"tokenizer returned {type(tokens).__name__}, not Tokens"
    B, L, D = tokens.embeddings.shape
    assert B == batch_size, f"embeddings batch {B} != {batch_size}"
    assert L == tokenizer.num_tokens, f"embeddings have {L} tokens, tokenizer.num_tokens says {tokenizer.num_tokens}"
    assert D == tokenizer.embed_dim, f"embedding width {D} != tokenizer.embed_dim {tokenizer.embed_dim}"
    assert tokens.targets.shape[:2] == (B, L), f"targets shape {tuple(tokens.targets.shape)} does not start (B, L)"
    assert tokens.targets.shape[-1] == tokenizer.target_dim, "targets' last dim != tokenizer.target_dim"
    if tokens.layout is not None:
        n = 1
        for s in tokens.layout:
            n *= s
        assert n == L, f"layout {tokens.layout} does not multiply out to {L} tokens"
    _finite(tokens.embeddings, "embeddings")
    _finite(tokens.targets, "targets")
    if hasattr(tokenizer, "untokenize"):
        try:
            back = tokenizer.untokenize(tokens.targets)
        except NotImplementedError:
            back = None
        if back is not None and back.shape == x.shape:
            assert torch.allclose(back, x.to(back.dtype), atol=1e-5), "untokenize(targets) does not give the input back"
    params = [p for p in tokenizer.parameters() if p.requires_grad]
    if params:
        tokens.embeddings.float().pow(2).mean().backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), "no gradient reaches the tokenizer"
    return tokens


def check_masker(masker, tokens: Tokens, ratio: float) -> MaskInfo:
    """Consistent ``ids_keep``/``ids_restore``/``mask``; same count per sample; seeded repeatability."""
    B, L = tokens.embeddings.shape[:2]
    g1 = torch.Generator().manual_seed(1)
    info = masker(tokens, ratio, generator=g1)
    assert isinstance(info, MaskInfo), f"masker returned {type(info).__name__}, not MaskInfo"
    assert info.ids_restore.shape == (B, L), "ids_restore must be (B, L)"
    assert info.mask.shape == (B, L) and info.mask.dtype == torch.bool, "mask must be bool (B, L)"
    Lv = info.ids_keep.shape[1]
    assert 0 < Lv <= L, f"masker keeps {Lv} of {L} tokens"
    assert (info.mask.sum(1) == L - Lv).all(), "every sample must mask the same number of tokens"
    kept = torch.zeros(B, L, dtype=torch.bool).scatter_(1, info.ids_keep.cpu(), True)
    assert torch.equal(kept, ~info.mask.cpu()), "ids_keep and mask disagree"
    assert torch.equal(torch.sort(info.ids_restore, 1).values.cpu(), torch.arange(L).expand(B, L)), (
        "ids_restore is not a permutation"
    )
    again = masker(tokens, ratio, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again.mask, info.mask), "the same generator seed gave a different mask"
    return info


def check_target_normalizer(normalizer, targets: torch.Tensor) -> None:
    """Shape kept, finite, ``denormalize(normalize(t), t) == t``."""
    normed = normalizer.normalize(targets)
    assert normed.shape == targets.shape, "normalize changed the shape"
    _finite(normed, "normalized targets")
    back = normalizer.denormalize(normed, targets)
    assert torch.allclose(back, targets.float(), atol=1e-4, rtol=1e-4), "denormalize does not invert normalize"


def check_loss(loss_fn, target: torch.Tensor, mask: torch.Tensor) -> None:
    """Scalar, finite, zero for a perfect prediction, and blind to visible tokens."""
    pred = torch.randn_like(target.float(), requires_grad=True)
    value = loss_fn(pred, target, mask)
    assert value.ndim == 0, "loss must be a scalar"
    _finite(value, "loss")
    value.backward()
    assert pred.grad is not None
    assert pred.grad[~mask].abs().sum() == 0, "the loss depends on visible tokens"
    perfect = loss_fn(target.float().clone(), target, mask)
    assert perfect.abs() < 1e-6, f"loss of a perfect prediction is {perfect.item()}, not 0"


def check_model(model, batch_size: int = 2) -> None:
    """End to end: every part above, then forward/backward of the model, shapes of
    :class:`MAEOutput`, no NaN, explicit-noise determinism, and gradients for every parameter
    the loss can reach."""
    model.train()
    tokens = check_tokenizer(model.tokenizer, batch_size)
    tokens = model.tokenizer(model.tokenizer.example_inputs(batch_size, generator=torch.Generator().manual_seed(0)))
    info = check_masker(model.masker, tokens, model.mask_ratio)
    check_target_normalizer(model.target_normalizer, tokens.targets.detach())
    check_loss(model.loss_fn, model.target_normalizer.normalize(tokens.targets.detach()), info.mask)

    model.zero_grad(set_to_none=True)
    x = model.tokenizer.example_inputs(batch_size, generator=torch.Generator().manual_seed(2))
    out = model(x, generator=torch.Generator().manual_seed(3))
    L = model.tokenizer.num_tokens
    assert out.pred.shape == out.target.shape, f"pred {tuple(out.pred.shape)} vs target {tuple(out.target.shape)}"
    assert out.pred.shape[:2] == (batch_size, L), "pred must be (B, L, P)"
    assert out.mask.shape == (batch_size, L) and out.mask.dtype == torch.bool
    _finite(out.loss, "loss")
    _finite(out.pred, "pred")
    out.loss.backward()
    dead = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not dead, f"parameters without gradient: {dead[:5]}"
    model.eval()
    with torch.no_grad():
        a = model(x, generator=torch.Generator().manual_seed(4))
        b = model(x, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.mask, b.mask) and torch.allclose(a.loss, b.loss), "seeded forward is not repeatable"
    feats = model.forward_features(x)
    assert feats.shape == (batch_size, model.encoder.embed_dim), "forward_features must be (B, D)"
    model.train()
