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
