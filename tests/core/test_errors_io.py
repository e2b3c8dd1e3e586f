"""Faults of files and disks: each is one line naming the problem (exit code 2 from the CLI) and
nothing written before is lost."""

from __future__ import annotations

import pytest
import torch

import maeflow
from maeflow.checkpoint import read_file
from maeflow.cli import main


def _one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"maeflow {command}: error: "), err
    return err


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A real maeflow checkpoint, as .pt and as .safetensors."""
    d = tmp_path_factory.mktemp("saved")
    model = maeflow.create_model("mae_vit_test")
    pt = maeflow.save_model(model, d / "model.pt")
    st = d / "model.safetensors"
    assert main(["convert", str(pt), "--to", "maeflow", "-o", str(st)]) == 0
    return pt, st


def _commands(path, tmp_path):
    return {
        "convert": ["convert", str(path), "--to", "mae", "-o", str(tmp_path / "out.pt")],
        "visualize": ["visualize", str(path), "--model", "mae_vit_test", "-o", str(tmp_path / "r.png")],
        "eval": ["eval", str(path), "--dataset", "digits"],
    }


@pytest.mark.parametrize("command", ["convert", "visualize", "eval"])
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_bad_safetensors_is_one_line(saved, tmp_path, capsys, command, damage):
    data = saved[1].read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(range(256)) * 4 if damage == "garbage" else data[: len(data) // 2])
    assert main(_commands(bad, tmp_path)[command]) == 2
    err = _one_error_line(capsys, command)
    assert "not a safetensors file, or a truncated or damaged one" in err and str(bad) in err


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("command", ["convert", "visualize", "eval"])
def test_empty_checkpoint_says_it_is_empty(tmp_path, capsys, command, suffix):
    empty = tmp_path / f"empty{suffix}"
    empty.touch()
    assert main(_commands(empty, tmp_path)[command]) == 2
    assert _one_error_line(capsys, command).endswith(f"cannot read checkpoint {empty}: file is empty (0 bytes)")


@pytest.mark.parametrize("content", [bytes(range(256)) * 4, b"hello world\n", b"\x80\x04\x95" + b"\x00" * 40])
def test_garbage_pt_is_one_line_without_unsafe_advice(tmp_path, capsys, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    assert main(["convert", str(bad), "--to", "mae", "-o", str(tmp_path / "out.pt")]) == 2
    err = _one_error_line(capsys, "convert")
    assert f"cannot read checkpoint {bad}: not a PyTorch/maeflow checkpoint (" in err
    assert "weights_only" not in err


def test_truncated_pt_says_so(saved, tmp_path):
    data = saved[0].read_bytes()
    bad = tmp_path / "cut.pt"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=r"truncated or damaged file \(failed finding central directory\)$"):
        read_file(bad)


def test_pickled_object_is_refused_in_one_line(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("unpickled!",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, path)
    with pytest.raises(ValueError) as info:
        read_file(path)
    text = str(info.value)
    assert "it holds a Python object (print)" in text and "weights_only" not in text and "\n" not in text


@pytest.mark.parametrize("preset, own", [("videomae_vit_test", "videomae"), ("pointmae_test", "pointmae"),
                                         ("audiomae_vit_test", "audiomae")])  # fmt: skip
@pytest.mark.parametrize("to", ["timm", "hf", "mae"])
def test_convert_refuses_another_modalitys_format(tmp_path, capsys, preset, own, to):
    model = maeflow.create_model(preset)
    src = maeflow.save_model(model, tmp_path / "src.pt")
    out = tmp_path / "out.pt"
    assert main(["convert", str(src), "--to", to, "-o", str(out)]) == 2
    err = _one_error_line(capsys, "convert")
    assert f"checkpoint format {to!r} is for image models, and {preset} is a {model.modality} model" in err
    assert err.endswith(f"formats for {model.modality} models: maeflow, {own}")
    assert not out.exists()
    assert main(["convert", str(src), "--to", own, "-o", str(out)]) == 0  # its own format still works


def test_format_without_modalities_serves_every_model():
    from maeflow.checkpoint import formats_for, serves

    class AnyModel:
        description = "a third-party format that names no modality"

    video = maeflow.create_model("videomae_vit_test")
    assert serves(AnyModel(), video)
    assert formats_for(video) == ["maeflow", "videomae"] and "timm" in formats_for(maeflow.create_model("mae_vit_test"))
    with pytest.raises(ValueError, match="formats for video models: maeflow, videomae"):
        maeflow.load_checkpoint(video, {"w": torch.zeros(1)}, format="mae")


def test_checkpoint_of_other_shapes_is_one_line(saved, tmp_path, capsys):
    args = ["convert", str(saved[0]), "--model", "mae_vit_test", "--set", "decoder_embed_dim=24", "--to", "mae",
            "-o", str(tmp_path / "out.pt")]  # fmt: skip
    assert main(args) == 2
    err = _one_error_line(capsys, "convert")
    assert "checkpoint does not fit the model (" in err and "tensors of other shapes): decoder." in err


def test_a_formats_conversion_failure_is_one_line(monkeypatch):
    from maeflow.checkpoint import export_state_dict

    fmt = maeflow.registry("checkpoint_format").get("hf")

    def broken(sd, model):
        raise KeyError("no Hugging Face name for encoder.extra")

    monkeypatch.setattr(fmt, "from_maeflow", broken)
    with pytest.raises(ValueError, match=r"^cannot write the 'hf' layout for this model \(KeyError: 'no Hugging"):
        export_state_dict(maeflow.create_model("mae_vit_test"), "hf")
