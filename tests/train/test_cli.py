"""``maeflow train`` / ``maeflow demo`` from the command line, and their one-line errors."""

import json

import pytest

from maeflow.cli import main


@pytest.fixture
def tiny_config(write_tiny_config):
    return write_tiny_config(max_steps=2)


def test_train_writes_a_complete_run(tiny_config, tmp_path, capsys):
    assert main(["train", str(tiny_config), "train.base_lr=1e-3"]) == 0
    run = tmp_path / "run"
    assert "checkpoint:" in capsys.readouterr().out
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "reconstruction.png").is_file()
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["type"] == "train"] == [1, 2]
    assert "base_lr: 0.001" in (run / "config.yaml").read_text()


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["train.epoch=3"], "unknown key 'epoch': did you mean 'epochs'?"),
        (["data.name=image_folder", "data.options.root=/no/such/folder"], "/no/such/folder"),
        (["data.batch_size=5000"], "fewer than one effective batch of 5000"),
        (["model.name=mae_vit_tset"], "did you mean 'mae_vit_test'?"),
    ],
)
def test_bad_input_is_one_clear_line(tiny_config, capsys, overrides, expected):
    assert main(["train", str(tiny_config), *overrides]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "Traceback" not in err
    assert err.startswith("maeflow train: error:")


def test_empty_image_folder(tiny_config, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    args = ["data.name=image_folder", f"data.options.root={tmp_path / 'empty'}"]
    assert main(["train", str(tiny_config), *args]) == 2
    err = capsys.readouterr().err
    assert "empty" in err.lower() or "no image" in err.lower(), err


def test_demo_prints_both_probe_rows(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["train.max_steps=1", "train.progress=false", "eval.linear_epochs=2", f"run.output_dir={out}"]
    assert main(["demo", *args]) == 0
    text = capsys.readouterr().out
    assert "pretrained MAE" in text and "random init" in text and "wall time" in text
    assert (out / "reconstruction.png").is_file() and (out / "checkpoints" / "last.pt").is_file()


def test_demo_verdict_names_each_evaluation():
    from maeflow.cli.demo import comparison_verdict

    probes = {"knn_top1": 80.0, "random_knn_top1": 70.0, "linear_top1": 90.0, "random_linear_top1": 85.0}
    assert comparison_verdict(probes) == "pretraining beats random initialization on kNN and linear probe"
    video = {**probes, "knn_top1": 20.0, "finetune_top1": 76.4, "random_finetune_top1": 33.8}
    assert comparison_verdict(video) == (
        "pretraining beats random initialization on linear probe and fine-tuning, not on kNN"
    )
    lost = {"knn_top1": 1.0, "random_knn_top1": 2.0, "linear_top1": 1.0, "random_linear_top1": 1.0}
    assert comparison_verdict(lost).startswith("pretraining did NOT beat random initialization (kNN and linear probe)")
    assert comparison_verdict({"knn_top1": 50.0}) is None  # no random twin: nothing to compare


@pytest.mark.filterwarnings("ignore:image_folder")
def test_corrupt_image_is_skipped_and_counted_in_the_log(tiny_config, tmp_path, capsys):
    from PIL import Image

    root = tmp_path / "images"
    root.mkdir()
    for i in range(20):
        Image.new("RGB", (40, 36), color=(10 * i, 5 * i, 255 - 10 * i)).save(root / f"img{i:02d}.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
    args = ["data.name=image_folder", f"data.options.root={root}", "train.reconstruction=false"]
    assert main(["train", str(tiny_config), *args]) == 0
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in records if r["type"] == "train"]
    assert records and all(r["data_skipped"] == 1 for r in records)
    # strict mode names the file instead
    assert main(["train", str(tiny_config), *args, "data.options.strict=true", "run.resume=never"]) == 2
    assert "broken.png" in capsys.readouterr().err


def test_eval_reproduces_the_trainers_final_numbers(tiny_config, tmp_path, capsys):
    """`maeflow eval RUN` defaults its seed to the run's run.seed and builds the random twin under
    seed + 1, as the trainer's final evaluation does, so the two report the same numbers."""
    ev = ["eval.final=true", "eval.compare_random_init=true", "eval.knn_k=5", "eval.linear_epochs=3",
          "eval.finetune_epochs=1", "eval.finetune_batch_size=256", "run.seed=3",
          "train.reconstruction=false"]  # fmt: skip
    assert main(["train", str(tiny_config), *ev]) == 0
    run = tmp_path / "run"
    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in logged if "random_finetune_top1" in r][-1]
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--compare-random-init", "--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["seed"] == 3
    for key in ("knn_top1", "linear_top1", "finetune_top1"):
        assert result["pretrained"][key] == pytest.approx(final[key]), key
        assert result["random_init"][key] == pytest.approx(final[f"random_{key}"]), key
    capsys.readouterr()
    assert main(["eval", str(run), "--seed", "0", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["seed"] == 0
