"""Loading Point-MAE checkpoints (``base_model`` layout) through maeflow.load_checkpoint."""

import pytest
import torch

import maeflow

CFG = dict(depth=2, decoder_depth=1, pointnet_widths=(128, 256, 512))  # Point-MAE widths; D = 32, k = 16


def point_mae_state_dict(D=32, hidden=16, k=16, depth=2, decoder_depth=1, generator=None):
    """A synthetic state dict with the reference's names and shapes, built from the layout
    (not from a maeflow model), so renames are checked against the real names."""
    g = generator

    def t(*shape):
        return torch.randn(*shape, generator=g)

    sd = {}

    def conv_bn(prefix, cin, cmid, cout):
        sd.update({
            f"{prefix}.0.weight": t(cmid, cin, 1), f"{prefix}.0.bias": t(cmid),
            f"{prefix}.1.weight": t(cmid), f"{prefix}.1.bias": t(cmid),
            f"{prefix}.1.running_mean": t(cmid), f"{prefix}.1.running_var": t(cmid).abs() + 0.5,
            f"{prefix}.1.num_batches_tracked": torch.tensor(7),
            f"{prefix}.3.weight": t(cout, cmid, 1), f"{prefix}.3.bias": t(cout),
        })  # fmt: skip

    def block(prefix):
        sd.update({
            f"{prefix}.norm1.weight": t(D), f"{prefix}.norm1.bias": t(D),
            f"{prefix}.attn.qkv.weight": t(3 * D, D),  # qkv_bias=False in Point-MAE
            f"{prefix}.attn.proj.weight": t(D, D), f"{prefix}.attn.proj.bias": t(D),
            f"{prefix}.norm2.weight": t(D), f"{prefix}.norm2.bias": t(D),
            f"{prefix}.mlp.fc1.weight": t(4 * D, D), f"{prefix}.mlp.fc1.bias": t(4 * D),
            f"{prefix}.mlp.fc2.weight": t(D, 4 * D), f"{prefix}.mlp.fc2.bias": t(D),
        })  # fmt: skip

    def pos(prefix):
        sd.update({f"{prefix}.0.weight": t(hidden, 3), f"{prefix}.0.bias": t(hidden),
                   f"{prefix}.2.weight": t(D, hidden), f"{prefix}.2.bias": t(D)})  # fmt: skip

    conv_bn("MAE_encoder.encoder.first_conv", 3, 128, 256)
    conv_bn("MAE_encoder.encoder.second_conv", 512, 512, D)
    pos("MAE_encoder.pos_embed")
    for i in range(depth):
        block(f"MAE_encoder.blocks.blocks.{i}")
    sd.update({"MAE_encoder.norm.weight": t(D), "MAE_encoder.norm.bias": t(D), "mask_token": t(1, 1, D)})
    pos("decoder_pos_embed")
    for i in range(decoder_depth):
        block(f"MAE_decoder.blocks.{i}")
    sd.update({"MAE_decoder.norm.weight": t(D), "MAE_decoder.norm.bias": t(D),
               "increase_dim.0.weight": t(3 * k, D, 1), "increase_dim.0.bias": t(3 * k)})  # fmt: skip
    return sd


def test_pretraining_checkpoint_loads_completely(seeded, tmp_path):
    sd = point_mae_state_dict(generator=seeded)
    model = maeflow.create_model("pointmae_test", **CFG)
    path = tmp_path / "pointmae.pth"
    torch.save({"base_model": {"module." + k: v for k, v in sd.items()}, "epoch": 300}, path)
    result = maeflow.load_checkpoint(model, path, strict=True)
    assert result.format == "pointmae" and not result.missing and not result.unexpected
    own = model.state_dict()
    assert torch.equal(own["tokenizer.first_conv.0.weight"], sd["MAE_encoder.encoder.first_conv.0.weight"])
    assert torch.equal(own["tokenizer.second_conv.1.running_var"], sd["MAE_encoder.encoder.second_conv.1.running_var"])
    assert torch.equal(own["encoder.blocks.1.attn.qkv.weight"], sd["MAE_encoder.blocks.blocks.1.attn.qkv.weight"])
    assert torch.equal(own["encoder.pos_embed.2.weight"], sd["MAE_encoder.pos_embed.2.weight"])
    assert torch.equal(own["decoder.pos_embed.0.bias"], sd["decoder_pos_embed.0.bias"])
    assert torch.equal(own["decoder.mask_token"], sd["mask_token"])
    assert torch.equal(own["decoder.pred.weight"], sd["increase_dim.0.weight"][..., 0])
    # and it runs
    out = model.eval()(model.tokenizer.example_inputs(2, generator=seeded))
    assert torch.isfinite(out.loss)


def test_export_round_trip(seeded):
    model = maeflow.create_model("pointmae_test", **CFG)
    exported = maeflow.export_state_dict(model, "pointmae")
    reference = point_mae_state_dict(generator=seeded)
    assert set(exported) == set(reference)
    assert all(exported[k].shape == reference[k].shape for k in reference)
    fresh = maeflow.create_model("pointmae_test", **CFG)
    maeflow.load_checkpoint(fresh, {"base_model": exported}, strict=True)
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_fine_tuning_checkpoint_loads_the_encoder(seeded):
    full = point_mae_state_dict(generator=seeded)
    sd = {k.replace("MAE_encoder.", "", 1): v for k, v in full.items() if k.startswith("MAE_encoder.")}
    sd.update({"cls_token": torch.zeros(1, 1, 32), "cls_pos": torch.zeros(1, 1, 32),
               "cls_head_finetune.0.weight": torch.zeros(256, 64)})  # fmt: skip
    model = maeflow.create_model("pointmae_test", **CFG)
    result = maeflow.load_checkpoint(model, {"base_model": sd})
    assert result.format == "pointmae" and not result.unexpected
    assert result.missing and all(k.startswith("decoder.") for k in result.missing)
    assert torch.equal(model.state_dict()["encoder.norm.weight"], full["MAE_encoder.norm.weight"])


def test_export_refuses_a_decoder_projection():
    model = maeflow.create_model("pointmae_features_test")
    with pytest.raises(ValueError, match="no input projection"):
        maeflow.export_state_dict(model, "pointmae")


def _reference_forward(sd, groups, centers, mask, heads=2):
    """Point-MAE's pretraining forward written from its published description, straight on a
    Point-MAE state dict (eval mode): mini-PointNet, encoder on the visible groups (ascending
    index order), decoder on [visible, mask tokens], the head on the masked outputs, Chamfer-L2."""
    import torch.nn.functional as F

    def lin(x, prefix):
        return F.linear(
            x, sd[f"{prefix}.weight"].reshape(sd[f"{prefix}.weight"].shape[0], -1), sd.get(f"{prefix}.bias")
        )

    def shared_mlp(x, prefix):  # x (M, C, k), Conv1d-BN-ReLU-Conv1d
        x = F.conv1d(x, sd[f"{prefix}.0.weight"], sd[f"{prefix}.0.bias"])
        x = F.batch_norm(x, sd[f"{prefix}.1.running_mean"], sd[f"{prefix}.1.running_var"],
                         sd[f"{prefix}.1.weight"], sd[f"{prefix}.1.bias"], training=False)  # fmt: skip
        return F.conv1d(F.relu(x), sd[f"{prefix}.3.weight"], sd[f"{prefix}.3.bias"])

    def ln(x, prefix):
        return F.layer_norm(x, x.shape[-1:], sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], eps=1e-5)

    def block(x, p):
        B, N, D = x.shape
        qkv = lin(ln(x, f"{p}.norm1"), f"{p}.attn.qkv").reshape(B, N, 3, heads, D // heads).permute(2, 0, 3, 1, 4)
        att = (qkv[0] @ qkv[1].transpose(-2, -1) * (D // heads) ** -0.5).softmax(-1)
        x = x + lin((att @ qkv[2]).transpose(1, 2).reshape(B, N, D), f"{p}.attn.proj")
        return x + lin(F.gelu(lin(ln(x, f"{p}.norm2"), f"{p}.mlp.fc1")), f"{p}.mlp.fc2")

    def pos(c, prefix):
        return lin(F.gelu(lin(c, f"{prefix}.0")), f"{prefix}.2")

    B, G, k, _ = groups.shape
    f = shared_mlp(groups.reshape(B * G, k, 3).transpose(1, 2), "MAE_encoder.encoder.first_conv")
    f = torch.cat([f.amax(2, keepdim=True).expand(-1, -1, k), f], dim=1)
    tokens = shared_mlp(f, "MAE_encoder.encoder.second_conv").amax(2).reshape(B, G, -1)
    D = tokens.shape[-1]
    x, c_vis, c_mask = (
        tokens[~mask].reshape(B, -1, D),
        centers[~mask].reshape(B, -1, 3),
        centers[mask].reshape(B, -1, 3),
    )
    p = pos(c_vis, "MAE_encoder.pos_embed")
    for i in range(2):
        x = block(x + p, f"MAE_encoder.blocks.blocks.{i}")
    x = ln(x, "MAE_encoder.norm")
    M = c_mask.shape[1]
    x = torch.cat([x, sd["mask_token"].expand(B, M, -1)], dim=1)
    p = torch.cat([pos(c_vis, "decoder_pos_embed"), pos(c_mask, "decoder_pos_embed")], dim=1)
    x = block(x + p, "MAE_decoder.blocks.0")
    x = ln(x[:, -M:], "MAE_decoder.norm")
    rebuilt = F.conv1d(x.transpose(1, 2), sd["increase_dim.0.weight"], sd["increase_dim.0.bias"]).transpose(1, 2)
    rebuilt, truth = rebuilt.reshape(B * M, k, 3), groups[mask].reshape(B * M, k, 3)
    d = ((rebuilt[:, :, None] - truth[:, None]) ** 2).sum(-1)
    return d.min(2).values.mean() + d.min(1).values.mean()


def test_loaded_checkpoint_reproduces_the_reference_forward(seeded):
    sd = {k: v * 0.2 if v.is_floating_point() else v for k, v in point_mae_state_dict(generator=seeded).items()}
    model = maeflow.create_model("pointmae_test", **CFG).eval()
    maeflow.load_checkpoint(model, {"base_model": sd}, strict=True)
    x = model.tokenizer.example_inputs(2, generator=seeded)
    with torch.no_grad():
        out = model(x, noise=torch.rand(2, 16, generator=seeded))
        tokens = out.tokens
        groups = tokens.targets.reshape(2, 16, 16, 3)
        ref = _reference_forward(sd, groups, tokens.positions, out.mask)
    assert out.mask.sum(1).tolist() == [9, 9]
    assert torch.allclose(out.loss, ref, rtol=1e-4, atol=1e-6), (out.loss.item(), ref.item())
