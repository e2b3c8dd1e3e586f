"""The FLOP count of a tiny image MAE against a count by hand from its architecture."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import maeflow
from maeflow.bench.measure import count_flops
from maeflow.bench.subjects import MaeflowSubject
from maeflow.runtime import Precision


def hand_count_mae_vit_test(attention_backward: float) -> int:
    """Forward+backward FLOPs per sample of ``mae_vit_test``, written out from the architecture.

    32² RGB images, 8-pixel patches → L = 16 tokens of P = 8·8·3 = 192 values; mask 0.75 keeps
    Lv = 4. Encoder width 32, 2 blocks, 2 heads, MLP 128, cls token → 5 tokens. Decoder width
    32, 1 block, 2 heads, MLP 128, on all 16 tokens + cls → 17 tokens. A matmul of (n×k)·(k×m)
    is 2·n·k·m FLOPs.

    Backward, as ``FlopCounterMode`` counts it: every linear layer 2× its forward (weight and
    input gradients), the patch embedding 1× (the image needs no gradient), and attention
    ``attention_backward``× its forward — 2× for the plain matmuls of the math path, 2.5× for
    SDPA's fused kernels, whose backward recomputes q·kᵀ (PyTorch's convention for them, which
    maeflow also applies to the CPU kernel so CPU and GPU counts agree).
    """

    def linear(n, k, m):
        return 2 * n * k * m

    def block(n, d, heads, hidden):
        return linear(n, d, 3 * d) + linear(n, d, d) + linear(n, d, hidden) + linear(n, hidden, d)

    def attention(n, d, heads):
        return 2 * heads * linear(n, d // heads, n)  # q·kᵀ and softmax·v, per head

    L, P, C, p = 16, 192, 3, 8
    D, Dd = 32, 32
    n_enc, n_dec = 4 + 1, 16 + 1
    patch_embed = linear(L, C * p * p, D)  # the stride-p convolution, one matmul per patch
    encoder = 2 * block(n_enc, D, 2, 4 * D)
    decoder_embed = linear(n_enc, D, Dd)  # latents (with cls) to decoder width
    decoder = 1 * block(n_dec, Dd, 2, 4 * Dd)
    decoder_pred = linear(n_dec, Dd, P)  # applied to every decoder token, cls included, then dropped
    linears = encoder + decoder_embed + decoder + decoder_pred
    attn = 2 * attention(n_enc, D, 2) + 1 * attention(n_dec, Dd, 2)
    return int(3 * linears + 2 * patch_embed + (1 + attention_backward) * attn)


@pytest.mark.parametrize("attention", ["sdpa", "math"])
def test_mae_vit_test_flops_match_hand_count(attention):
    """The bench counts with SDPA whatever backend the entry runs with, so entries compare."""
    torch.manual_seed(0)
    subject = MaeflowSubject("mae_vit_test", {}, attention)
    x = subject.example_inputs(2, torch.Generator().manual_seed(0))
    flops, visible = count_flops(subject, x, Precision("fp32", "cpu"))
    assert visible == 4
    assert flops / 2 == hand_count_mae_vit_test(attention_backward=2.5)
    # counting leaves no gradients behind and restores the entry's attention backend
    assert all(p.grad is None for p in subject.model.parameters())
    assert subject.model.encoder.blocks[0].attn.backend == attention


def test_plain_matmul_path_matches_hand_count():
    """The math path (plain matmuls, nothing bench-specific) checks the hand count's structure."""
    model = maeflow.create_model("mae_vit_test", attention="math")
    x = model.tokenizer.example_inputs(1, generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        model(x).loss.backward()
    assert counter.get_total_flops() == hand_count_mae_vit_test(attention_backward=2.0)
