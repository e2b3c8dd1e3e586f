"""``maeflow finetune`` / ``maeflow linprobe`` on the command line."""

from pathlib import Path

from maeflow.cli import main

DEMO = Path(__file__).resolve().parents[2] / "configs" / "image"


def test_commands_are_listed(capsys):
    try:
        main(["--help"])
    except SystemExit:
        pass
    out = capsys.readouterr().out
    assert "finetune" in out and "linprobe" in out


def test_print_config_and_task_check(capsys):
    assert main(["finetune", str(DEMO / "finetune_demo.yaml"), "train.epochs=3", "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "epochs: 3" in printed and "rand-m9-mstd0.5-inc1" in printed
    assert main(["finetune", str(DEMO / "linprobe_demo.yaml")]) == 2
    assert "maeflow linprobe" in capsys.readouterr().err
    assert main(["linprobe", str(DEMO / "finetune_demo.yaml")]) == 2


def test_linprobe_runs_from_a_maeflow_checkpoint(tmp_path, capsys):
    import torch

    from maeflow.checkpoint import save_model
    from maeflow.factory import create_model

    torch.manual_seed(0)
    save_model(create_model("mae_vit_test"), tmp_path / "mae.pt")
    code = main(["linprobe", str(DEMO / "linprobe_demo.yaml"), f"model.source={tmp_path / 'mae.pt'}",
                 f"run.output_dir={tmp_path / 'lp'}", "train.max_steps=3", "train.progress=false",
                 "run.device=cpu"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "top-1:" in out and (tmp_path / "lp" / "classifier.safetensors").is_file()
