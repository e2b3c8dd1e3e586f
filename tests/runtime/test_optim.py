"""Parameter groups and the learning-rate schedule against hand-computed values."""

import math

import pytest
import torch

import maeflow
from maeflow.runtime import WarmupCosine, build_optimizer, param_groups


def test_param_groups_exclude_biases_norms_tokens_and_positions():
    torch.manual_seed(0)
    model = maeflow.create_model("mae_vit_test")
    groups = {g["name"]: g for g in param_groups(model, weight_decay=0.05)}
    decay, no_decay = set(groups["decay"]["names"]), set(groups["no_decay"]["names"])
    assert groups["decay"]["weight_decay"] == 0.05 and groups["no_decay"]["weight_decay"] == 0.0
    assert "encoder.cls_token" in no_decay and "decoder.mask_token" in no_decay
    assert "encoder.blocks.0.attn.qkv.bias" in no_decay and "encoder.blocks.0.norm1.weight" in no_decay
    assert "encoder.norm.weight" in no_decay and "decoder.pred.bias" in no_decay
    assert "encoder.blocks.0.attn.qkv.weight" in decay and "decoder.pred.weight" in decay
    assert "tokenizer.proj.weight" in decay  # the patch-embedding kernel takes weight decay, as in MAE
    all_names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert decay | no_decay == all_names and not decay & no_decay
    # every 1-D parameter is excluded, every matrix (except tokens) decays
    for name, p in model.named_parameters():
        if p.ndim <= 1:
            assert name in no_decay, name


def test_frozen_parameters_are_left_out():
    model = maeflow.create_model("mae_vit_test")
    model.decoder.requires_grad_(False)
    names = [n for g in param_groups(model, 0.05) for n in g["names"]]
    assert names and not any(n.startswith("decoder.") for n in names)


def test_optimizer_groups_keep_hyperparameters():
    model = maeflow.create_model("mae_vit_test")
    opt = build_optimizer(model, lr=1e-3, weight_decay=0.05, betas=(0.9, 0.95))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.05, 0.0]
    assert all(g["betas"] == (0.9, 0.95) for g in opt.param_groups)
    assert "names" not in opt.param_groups[0]  # optimizer state stays weights_only-loadable


def test_schedule_matches_hand_computed_values():
    # peak 1e-3, 100 steps, 10 warm-up, min 1e-5
    s = WarmupCosine(None, peak_lr=1e-3, total_steps=100, warmup_steps=10, min_lr=1e-5)
    assert s.lr_at(0) == 0.0
    assert s.lr_at(5) == pytest.approx(5e-4)
    assert s.lr_at(10) == pytest.approx(1e-3)
    # halfway through the cosine: (min + peak) / 2
    assert s.lr_at(55) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert s.lr_at(55) == pytest.approx(5.05e-4)
    assert s.lr_at(32) == pytest.approx(1e-5 + 0.99e-3 * 0.5 * (1 + math.cos(math.pi * 22 / 90)))
    assert s.lr_at(100) == pytest.approx(1e-5)
    lrs = [s.lr_at(i) for i in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs[:-1], lrs[1:], strict=True))  # monotone decay after warm-up


def test_schedule_drives_optimizer_and_resumes():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1.0)
    s = WarmupCosine(opt, peak_lr=2e-3, total_steps=8, warmup_steps=4)
    seen = []
    for _ in range(3):
        seen.append(s.apply())
        s.step()
    assert seen == pytest.approx([0.0, 5e-4, 1e-3])
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    other = WarmupCosine(opt, peak_lr=2e-3, total_steps=8, warmup_steps=4)
    other.load_state_dict(s.state_dict())
    assert other.apply() == pytest.approx(1.5e-3)


def test_schedule_rejects_bad_lengths():
    with pytest.raises(ValueError, match="total_steps"):
        WarmupCosine(None, 1e-3, total_steps=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosine(None, 1e-3, total_steps=10, warmup_steps=11)


def _mae_layer_id(name: str, depth: int) -> int:
    """MAE's fine-tuning layer ids (BEiT's ``get_layer_id_for_vit``) spelled out for maeflow's
    names: tokenizer, cls token and positional tables 0, block i → i + 1, everything else depth + 1."""
    if name.startswith(("tokenizer.", "encoder.cls_token", "encoder.pos_embed")):
        return 0
    if name.startswith("encoder.blocks."):
        return int(name.split(".")[2]) + 1
    return depth + 1


@pytest.mark.parametrize("preset", ["mae_vit_test", "pointmae_test", "audiomae_vit_test"])
def test_layer_decay_gives_mae_per_block_ratios(preset):
    """timm's layer-decay grouping over maeflow's names: scale = decay ** (depth + 1 - layer id)."""
    model = maeflow.create_model(preset)
    model.decoder.requires_grad_(False)  # fine-tuning optimizes the feature path only
    depth, decay = len(model.encoder.blocks), 0.65
    opt = build_optimizer(model, lr=1e-3, weight_decay=0.05, layer_decay=decay)
    scale = {id(p): g["lr_scale"] for g in opt.param_groups for p in g["params"]}
    wd = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    skip = model.no_weight_decay_names()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert len(scale) == len(trainable)
    for name, p in trainable:
        assert scale[id(p)] == pytest.approx(decay ** (depth + 1 - _mae_layer_id(name, depth))), name
        assert wd[id(p)] == (0.0 if name in skip else 0.05), name
    assert "names" not in opt.param_groups[0]


def test_fused_resolution():
    from maeflow.runtime import resolve_fused

    cpu = torch.device("cpu")
    assert resolve_fused("auto", cpu) and resolve_fused("auto", torch.device("cuda"))
    assert not resolve_fused("auto", torch.device("mps")) and not resolve_fused(False, cpu)
    with pytest.raises(ValueError, match="fused_optimizer"):
        resolve_fused("yes", cpu)
    assert build_optimizer(torch.nn.Linear(2, 2), 1e-3, 0.05, fused="auto").defaults["fused"] is True
