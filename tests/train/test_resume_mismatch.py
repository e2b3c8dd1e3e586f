"""A resume whose config changes the model or the data order is refused, naming the keys,
unless ``run.resume_mismatch=allow``; extending a run or changing logging resumes as before."""

import json

import pytest

from maeflow.cli import main
from maeflow.runtime.state import config_changes


@pytest.fixture
def trained(tmp_path, write_tiny_config):
    """A finished two-step run: ``(config path, run dir)``."""
    path = write_tiny_config(max_steps=2, reconstruction=False)
    assert main(["train", str(path)]) == 0
    return path, tmp_path / "run"


def train_steps(run_dir) -> list[int]:
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in records if r["type"] == "train"]


@pytest.mark.parametrize(
    "override, named",
    [
        ("model.args.depth=3", "model.args.depth: <unset> -> 3"),
        ("data.batch_size=8", "data.batch_size: 16 -> 8"),
        ("run.seed=1", "run.seed: 0 -> 1"),
        ("train.mask_seed=batch", "train.mask_seed: sample -> batch"),
    ],
)
def test_resume_with_another_model_or_data_order_is_refused(trained, capsys, override, named):
    path, run_dir = trained
    before = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    config_before = (run_dir / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["train", str(path), "train.max_steps=3", override]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "\n" not in err, err
    assert "cannot resume" in err and named in err and "run.resume_mismatch=allow" in err
    # nothing lost: the checkpoints, the saved config and the metrics are as they were
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == before
    assert (run_dir / "config.yaml").read_text() == config_before and train_steps(run_dir) == [1, 2]


def test_allow_resumes_a_changed_data_order(trained, capsys):
    path, run_dir = trained
    assert main(["train", str(path), "train.max_steps=3", "data.batch_size=8", "run.resume_mismatch=allow"]) == 0
    assert train_steps(run_dir) == [1, 2, 3]


def test_allow_with_another_model_shape_is_still_one_line(trained, capsys):
    path, run_dir = trained
    capsys.readouterr()
    assert main(["train", str(path), "train.max_steps=3", "model.args.depth=3", "run.resume_mismatch=allow"]) == 2
    err = capsys.readouterr().err.strip()
    assert "its model does not fit this one" in err and "Traceback" not in err and "\n" not in err


def test_extending_a_run_or_changing_logging_resumes(trained):
    path, run_dir = trained
    assert main(["train", str(path), "train.max_steps=3", "train.keep_last=3", "eval.knn_k=5"]) == 0
    assert train_steps(run_dir) == [1, 2, 3]


def test_config_changes_compares_leaves_of_the_keys_that_matter():
    saved = {
        "model": {"name": "m", "args": {"depth": 2}},
        "data": {"name": "d", "options": {"root": "a"}, "batch_size": 16},
        "train": {"epochs": 1, "accum_iter": None},
        "run": {"output_dir": "x", "seed": 0},
    }
    same = json.loads(json.dumps(saved))
    same["train"]["epochs"], same["run"]["output_dir"] = 5, "y"
    assert config_changes(saved, same) == []
    other = json.loads(json.dumps(saved))
    other["data"]["options"]["root"], other["train"]["accum_iter"] = "b", 2
    assert config_changes(saved, other) == ["data.options.root: a -> b", "train.accum_iter: None -> 2"]
