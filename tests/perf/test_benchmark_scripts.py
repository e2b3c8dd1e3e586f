"""The benchmark scripts in benchmarks/ import, parse their options and run a tiny CPU pass
(the GPU machine runs them for real; see benchmarks/README.md)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["cpu_step_vs_hf", "gpu_datapath", "gpu_fastpath_parity", "datapath_shards"])
def test_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load(name).main(["--help"])
    assert exit_info.value.code == 0 and "--dry-run" in capsys.readouterr().out


def test_cpu_step_vs_hf_dry_run_matches_hf_loss():
    pytest.importorskip("transformers")
    bench = load("cpu_step_vs_hf")
    res = bench.run(bench.parse_args(["--dry-run", "--quiet", "--threads", "1"]))
    assert set(res["images_per_s"]) == {"maeflow", "hf"} and all(v > 0 for v in res["images_per_s"].values())
    # same weights, batch and noise: the first steps agree
    assert res["first_step"]["maeflow"]["loss"] == pytest.approx(res["first_step"]["hf"]["loss"], rel=1e-5)
    md = bench.to_markdown(res)
    assert "| maeflow (eager) |" in md and "| Hugging Face ViTMAEForPreTraining (sdpa, eager) |" in md


@pytest.mark.slow
def test_gpu_datapath_dry_run(capsys):
    assert load("gpu_datapath").main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "end-to-end / synthetic" in out and "auto picks" in out


def test_gpu_fastpath_parity_dry_run(capsys):
    assert load("gpu_fastpath_parity").main(["--dry-run"]) == 0
    assert "within" in capsys.readouterr().out


@pytest.mark.slow
def test_datapath_shards_dry_run(capsys):
    assert load("datapath_shards").main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "image      shards" in out and "video      folder  pyav" in out
