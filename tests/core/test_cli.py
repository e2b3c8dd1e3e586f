"""The CLI's own commands: plugins, convert, demo's choices, errors as one line."""

import json
from pathlib import Path

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


def test_demo_list_names_every_plugins_demo_and_the_default(capsys):
    assert main(["demo", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {line.split()[0]: line for line in lines}
    assert {"image", "video", "audio", "pointcloud"} <= set(by_name)
    assert "(default)" in by_name["image"] and "maeflow_image" in by_name["image"]
    assert sum("(default)" in line for line in lines) == 1


def test_demo_errors_are_one_line(tmp_path, capsys):
    assert main(["demo", "imagee"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("maeflow demo: error: unknown demo 'imagee': did you mean 'image'?"), err
    assert len(err.splitlines()) == 1
    assert main(["demo", "image", "--config", str(tmp_path / "x.yaml")]) == 2
    assert "not both" in capsys.readouterr().err


def test_demo_words_and_default_rules():
    from maeflow import Demo, Registrar, Registry
    from maeflow.cli.demo import default_demo, split_words

    assert split_words([]) == (None, [])
    assert split_words(["train.epochs=2"]) == (None, ["train.epochs=2"])
    assert split_words(["video", "train.epochs=2"]) == ("video", ["train.epochs=2"])
    demos = Registry("demo")
    Registrar({"demo": demos}, "mine").demo("plain", "plain.yaml")  # a str becomes a Path
    assert demos.entry("plain").obj == Demo(Path("plain.yaml")) and demos.entry("plain").plugin == "mine"
    assert default_demo(demos) == "plain"
    demos = Registry("demo")
    with pytest.raises(ValueError, match="no demo is registered"):
        default_demo(demos)
    demos.add("a", Demo("a.yaml"))
    assert default_demo(demos) == "a"  # the only one
    demos.add("b", Demo("b.yaml"))
    with pytest.raises(ValueError, match="no demo is marked default: name one"):
        default_demo(demos)
    demos.add("c", Demo("c.yaml", default=True))
    assert default_demo(demos) == "c"
    demos.add("d", Demo("d.yaml", default=True))
    with pytest.raises(ValueError, match=r"several demos are marked default \(c, d\)"):
        default_demo(demos)
