"""``maeflow eval`` on checkpoints saved with ``maeflow.save_model`` and on run directories."""

import json
import os

import pytest
import torch

import maeflow
from maeflow.cli import main
from maeflow.cli.eval import dataset_from_config, resolve_checkpoint
from maeflow.utils.io import atomic_torch_save


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = maeflow.create_model("mae_vit_test", img_size=16)
    return maeflow.save_model(model, tmp_path_factory.mktemp("ckpt") / "model.pt")


def test_eval_checkpoint_with_random_baseline(checkpoint, tmp_path, capsys):
    out = tmp_path / "probes.json"
    rc = main(["eval", str(checkpoint), "--dataset", "digits", "--linear-epochs", "3", "--knn-k", "5",
               "--compare-random-init", "--json", str(out)])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "kNN top-1" in printed and "random init" in printed and "pretrained" in printed
    result = json.loads(out.read_text())
    assert result["dataset"] == "digits" and result["model"] == "mae_vit_test"
    for key in ("pretrained", "random_init"):
        assert result[key]["num_train"] == 1438 and result[key]["num_test"] == 359
        assert result[key]["knn_k"] == 5 and 0 <= result[key]["linear_top1"] <= 100
    assert result["options"] == {"augment": False}  # img_size 16 came from the model, not the options


def test_eval_finetune_column_and_json(checkpoint, tmp_path, capsys):
    out = tmp_path / "ft.json"
    rc = main(["eval", str(checkpoint), "--dataset", "digits", "--linear-epochs", "2", "--knn-k", "5",
               "--finetune-epochs", "1", "--finetune-batch-size", "128", "--compare-random-init",
               "--json", str(out)])  # fmt: skip
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if "kNN top-1" in line)
    assert header.endswith("fine-tune top-1")
    rows = [line for line in lines if line.startswith(("pretrained", "random init"))]
    assert len(rows) == 2 and all(row.endswith("%") and row.count("%") == 3 for row in rows)
    assert any("fine-tuning 1 epochs (lr 0.001, batch 128)" in line for line in lines)
    result = json.loads(out.read_text())
    for key in ("pretrained", "random_init"):
        r = result[key]
        assert 0 <= r["finetune_top1"] <= 100 and r["finetune_train_loss"] > 0
        assert (r["finetune_epochs"], r["finetune_lr"], r["finetune_batch_size"]) == (1, 1e-3, 128)
    assert result["options"] == {"augment": False} and result["finetune_options"] == {}  # train split augments


def test_eval_finetune_layer_decay_reaches_the_optimizer(checkpoint, tmp_path, monkeypatch, capsys):
    import maeflow.eval as meval

    seen, real = [], meval.finetune_encoder

    def spy(*args, **kwargs):
        seen.append(kwargs.get("layer_decay"))
        return real(*args, **kwargs)

    monkeypatch.setattr(meval, "finetune_encoder", spy)
    out = tmp_path / "ld.json"
    rc = main(["eval", str(checkpoint), "--dataset", "digits", "--linear-epochs", "1", "--knn-k", "5",
               "--finetune-epochs", "1", "--finetune-batch-size", "256", "--finetune-layer-decay", "0.75",
               "--json", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0 and seen == [0.75]
    assert any("layer decay 0.75" in line for line in capsys.readouterr().out.splitlines())
    assert json.loads(out.read_text())["pretrained"]["finetune_layer_decay"] == 0.75
    rc = main(["eval", str(checkpoint), "--dataset", "digits", "--finetune-epochs", "1",
               "--finetune-layer-decay", "1.5"])  # fmt: skip
    assert rc == 2 and "finetune_layer_decay" in capsys.readouterr().err


def test_eval_run_directory_uses_config(checkpoint, tmp_path, capsys):
    payload = torch.load(checkpoint, weights_only=True)
    payload["config"] = {
        "data": {"name": "digits", "options": {"augment": True, "in_chans": 3}},
        "eval": {
            "dataset": None,
            "options": {"test_fraction": 0.1},
            "knn_k": 3,
            "linear_epochs": 2,
            "finetune_epochs": 1,
            "finetune_batch_size": 256,
        },
    }
    payload["progress"] = {"global_step": 42}
    run = tmp_path / "run"
    atomic_torch_save(payload, run / "checkpoints" / "step-00000042.pt")
    os.link(run / "checkpoints" / "step-00000042.pt", run / "checkpoints" / "last.pt")
    out = tmp_path / "r.json"
    assert main(["eval", str(run), "--json", str(out), "--pool", "mean"]) == 0
    result = json.loads(out.read_text())
    assert result["step"] == 42 and result["checkpoint"].endswith("last.pt")
    assert result["pretrained"]["num_test"] == 179 and result["pretrained"]["knn_k"] == 3  # test_fraction 0.1
    assert result["pretrained"]["finetune_epochs"] == 1 and "finetune_top1" in result["pretrained"]  # from eval.*
    assert result["finetune_options"]["augment"] is True and result["options"]["augment"] is False
    printed = capsys.readouterr().out
    assert "pretrained (step 42)" in printed and "mean features" in printed


def test_eval_errors(checkpoint, tmp_path, capsys):
    assert main(["eval", str(checkpoint)]) == 2
    assert "pass --dataset" in capsys.readouterr().err
    assert main(["eval", str(checkpoint), "--dataset", "digits", "--data", "img_sise=16"]) == 2
    assert "did you mean 'img_size'" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nothing")]) == 2
    assert "not found" in capsys.readouterr().err


def test_resolve_checkpoint(tmp_path):
    for name in ("step-00000009.pt", "step-00000010.pt", "notes.pt"):
        (tmp_path / "checkpoints").mkdir(exist_ok=True)
        (tmp_path / "checkpoints" / name).write_bytes(b"x")
    assert resolve_checkpoint(tmp_path).name == "step-00000010.pt"
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"x")
    assert resolve_checkpoint(tmp_path).name == "last.pt"
    assert resolve_checkpoint(tmp_path / "checkpoints" / "notes.pt").name == "notes.pt"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        resolve_checkpoint(tmp_path / "empty")


def test_dataset_from_config():
    cfg = {"data": {"name": "digits", "options": {"img_size": 32}}, "eval": {"options": {"seed": 1}}}
    assert dataset_from_config(cfg)[:2] == ("digits", {"img_size": 32, "seed": 1})
    other = {"data": {"name": "image_folder", "options": {"root": "x"}}, "eval": {"dataset": "digits"}}
    assert dataset_from_config(other)[:2] == ("digits", {})  # pretraining options belong to another dataset
    assert dataset_from_config(None) == (None, {}, {})


def test_eval_cli_and_trainer_share_the_probe_code(checkpoint, monkeypatch, capsys):
    """``maeflow eval`` and the trainer's evaluations are one ProbeEvaluator: the same function
    object probes in both."""
    import maeflow.train.builder as builder
    from maeflow.config import config_from_dict
    from maeflow.eval.probe import ProbeEvaluator

    assert builder.ProbeEvaluator is ProbeEvaluator
    calls = []
    real = ProbeEvaluator.evaluate

    def spy(self, model, final=True):
        calls.append(self.options)
        return real(self, model, final)

    monkeypatch.setattr(ProbeEvaluator, "evaluate", spy)
    assert main(["eval", str(checkpoint), "--dataset", "digits", "--linear-epochs", "1", "--knn-k", "3"]) == 0
    cfg = config_from_dict({"model": {"name": "mae_vit_test", "args": {"img_size": 16}}, "data": {"name": "digits"}},
                           {"eval.final": True, "eval.linear_epochs": 1, "eval.knn_k": 3,
                            "eval.options": {"augment": True}})  # fmt: skip
    model = builder.build_model(cfg)
    trained = builder.ProbeEvaluator(cfg, model)(model)
    assert 0 <= trained["knn_top1"] <= 100
    assert calls == [{"augment": False}] * 2  # probes never augment, whatever the options say


def test_eval_device_goes_through_the_runtime_resolver(checkpoint, capsys):
    assert main(["eval", str(checkpoint), "--dataset", "digits", "--device", "tpu9"]) == 2
    assert "device must be auto, cpu, cuda or cuda:N" in capsys.readouterr().err
