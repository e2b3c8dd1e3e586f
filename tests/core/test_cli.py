"""The CLI's own commands: plugins, convert, errors as one line."""

import json

import pytest
import torch

import maeflow
from maeflow.cli import main


def test_plugins_lists_what_each_plugin_registered(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert "mae_vit_base_patch16" in rows["maeflow_image"]["components"]["model"]
    assert rows["maeflow"]["components"]["masker"] == ["random"]
    assert main(["plugins"]) == 0
    assert "maeflow_image" in capsys.readouterr().out


@pytest.mark.parametrize("fmt,suffix", [("timm", ".safetensors"), ("mae", ".pth"), ("hf", ".pt"), ("maeflow", ".pt")])
def test_convert_writes_each_layout(tmp_path, fmt, suffix):
    model = maeflow.create_model("mae_vit_test")
    src = maeflow.save_model(model, tmp_path / "src.pt")
    dst = tmp_path / f"out{suffix}"
    assert main(["convert", str(src), "--to", fmt, "-o", str(dst)]) == 0
    again = maeflow.create_model("mae_vit_test")
    result = maeflow.load_checkpoint(again, dst)
    expected_missing = fmt == "timm"  # the timm export is the encoder only
    assert bool(result.missing) == expected_missing
    enc = "encoder.blocks.0.attn.qkv.weight"
    assert torch.equal(again.state_dict()[enc], model.state_dict()[enc])


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nope.pt"), "--to", "mae", "-o", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("maeflow convert: error: checkpoint not found") and "Traceback" not in err
    src = maeflow.save_model(maeflow.create_model("mae_vit_test"), tmp_path / "src.pt")
    assert main(["convert", str(src), "--to", "onnx", "-o", str(tmp_path / "x.pt")]) == 2
    assert "unknown checkpoint format 'onnx'" in capsys.readouterr().err
