"""Bench configs: schema, overrides, and validation against the registries before any run."""

from pathlib import Path

import pytest
import yaml

from maeflow.bench import load_config, parse_config, run_bench, validate
from maeflow.bench.config import apply_overrides

REPO = Path(__file__).resolve().parents[2]


def config(*entries, **top):
    return parse_config({"device": "cpu", "isolation": "inprocess", **top, "entries": list(entries)})


def test_defaults_fill_entries_and_names_default_to_the_preset():
    cfg = config(
        {"preset": "mae_vit_test"},
        {"preset": "mae_vit_test", "kind": "hf_vitmae", "optimizer": {"lr": 1e-3}},
        defaults={"batch": 3, "steps": 4, "warmup": 1, "optimizer": {"weight_decay": 0.0}},
    )
    a, b = cfg.entries
    assert (a.name, b.name) == ("mae_vit_test", "hf_vitmae:mae_vit_test")
    assert a.batch == b.batch == 3 and a.steps == 4
    assert b.optimizer.lr == 1e-3 and b.optimizer.weight_decay == 0.0  # nested mappings merge


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"preset": "mae_vit_test", "stesp": 3}, "stesp"),
        ({"preset": "mae_vit_test", "steps": 3, "warmup": 3}, "warmup"),
        ({"preset": "mae_vit_test", "precision": "fp8"}, "precision"),
        ({"preset": "mae_vit_test", "attention": "flash"}, "unknown attention backend"),
    ],
)
def test_schema_errors_name_the_problem(entry, message):
    with pytest.raises(ValueError, match=message):
        config(entry)


def test_unknown_keys_name_the_entry_the_valid_keys_and_a_close_match():
    with pytest.raises(ValueError) as info:
        config({"preset": "mae_vit_test"}, {"name": "b", "preset": "mae_vit_test", "stesp": 3})
    msg = str(info.value)
    assert "'entries.b.stesp'" in msg and "did you mean 'steps'?" in msg and "warmup" in msg
    assert "Extra inputs" not in msg
    with pytest.raises(ValueError, match=r"'entries.mae_vit_test.data.optons'.*did you mean 'options'"):
        config({"preset": "mae_vit_test", "data": {"dataset": "digits", "optons": {}}})
    with pytest.raises(ValueError, match=r"'defaults.optimizer.lrr'.*did you mean 'lr'"):
        config({"preset": "mae_vit_test"}, defaults={"optimizer": {"lrr": 1}})
    with pytest.raises(ValueError, match=r"unknown key 'isolaton'.*did you mean 'isolation'"):
        config({"preset": "mae_vit_test"}, isolaton="inprocess")


def test_bad_values_name_the_entry_by_name():
    with pytest.raises(ValueError, match=r"entries.b.precision: Input should be 'fp32', 'bf16' or 'fp16'"):
        config({"preset": "mae_vit_test"}, {"name": "b", "preset": "mae_vit_test", "precision": "fp8"})


def test_env_references_resolve_as_in_run_configs(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text(
        "entries:\n  - preset: mae_vit_test\n"
        "    data: {dataset: image_folder, options: {root: '${ROOT}'}}\n    name: ${NAME:-x}\n"
    )
    cfg, raw = load_config(path, env={"ROOT": "/data"})
    assert cfg.entries[0].data.options == {"root": "/data"} and cfg.entries[0].name == "x"
    assert raw["entries"][0]["data"]["options"]["root"] == "/data"
    with pytest.raises(ValueError, match=r"uses \$\{ROOT\}.*export ROOT="):
        load_config(path, env={})


def test_duplicate_names_are_rejected():
    with pytest.raises(ValueError, match="two entries are named"):
        config({"preset": "mae_vit_test"}, {"preset": "mae_vit_test"})


def test_overrides_reach_every_entry_or_one():
    raw = {"entries": [{"preset": "mae_vit_test", "steps": 9}, {"name": "b", "preset": "mae_vit_test"}]}
    out = apply_overrides(raw, {"steps": 3, "warmup": 1, "entries.b.batch": 2, "optimizer.lr": 0.01, "device": "cpu"})
    cfg = parse_config(out)
    assert [e.steps for e in cfg.entries] == [3, 3]
    assert [e.batch for e in cfg.entries] == [8, 2]
    assert all(e.optimizer.lr == 0.01 for e in cfg.entries)
    assert cfg.device == "cpu"
    with pytest.raises(ValueError, match="did you mean 'steps'"):
        apply_overrides(raw, {"stpes": 3})
    with pytest.raises(ValueError, match="no entry named 'c'"):
        apply_overrides(raw, {"entries.c.batch": 2})
    # sub-keys are checked like run-config overrides
    with pytest.raises(ValueError, match=r"override 'optimizer.lrr' \(optimizer\).*did you mean 'lr'"):
        apply_overrides(raw, {"optimizer.lrr": 0.1})
    with pytest.raises(ValueError, match=r"override 'entries.b.stpes' \(entries.b\).*did you mean 'steps'"):
        apply_overrides(raw, {"entries.b.stpes": 2})
    assert parse_config(apply_overrides(raw, {"defaults.batch": 5})).entries[0].batch == 5


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"preset": "mae_vit_tset"}, r"unknown model 'mae_vit_tset': did you mean 'mae_vit_test'\?.*Valid names:"),
        ({"preset": "mae_vit_test", "data": {"dataset": "digitz"}}, r"unknown dataset 'digitz': did you mean 'digits'"),
        ({"preset": "mae_vit_test", "args": {"img_sise": 32}}, r"img_sise.*did you mean 'img_size'"),
        ({"preset": "mae_vit_test", "probe": True}, "probe: true needs a labelled dataset"),
        ({"preset": "mae_vit_test", "kind": "hf_vitmea"}, r"unknown bench subject 'hf_vitmea'.*'hf_vitmae'"),
        ({"preset": "mae_vit_test", "kind": "hf_vitmae", "data": {"dataset": "digits"}}, "synthetic"),
        ({"preset": "mae_vit_test", "kind": "hf_vitmae", "probe": True}, "probes are for maeflow entries"),
    ],
)
def test_unknown_names_fail_before_anything_runs(entry, message, tmp_path, monkeypatch):
    import maeflow.bench.runner as runner

    def must_not_run(*args, **kwargs):
        raise AssertionError("an entry ran although the config is invalid")

    monkeypatch.setattr(runner, "run_entry", must_not_run)
    # the bad entry is second: the good first one must not run either
    cfg = config({"preset": "mae_vit_test", "steps": 2, "warmup": 0}, {"name": "bad", **entry})
    with pytest.raises(ValueError, match=message) as info:
        run_bench(cfg, tmp_path / "out", progress=False)
    assert "entry 'bad'" in str(info.value) and "nothing was run" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_hf_peer_needs_an_image_patch_preset():
    validate(config({"kind": "hf_vitmae", "preset": "mae_vit_test"}))
    from maeflow.plugins import registry

    others = [n for n in registry("model").names("*_test") if not n.startswith("mae_vit")]
    if not others:
        pytest.skip("no non-image preset registered")
    with pytest.raises(ValueError, match="hf_vitmae needs"):
        validate(config({"kind": "hf_vitmae", "preset": others[0]}))


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "bench").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_parse_and_start_with_their_command(path):
    text = path.read_text()
    assert text.startswith(f"# maeflow bench configs/bench/{path.name}")
    cfg, raw = load_config(path)
    assert cfg.entries and raw == yaml.safe_load(text)
    from maeflow.plugins import registry

    # registry checks for the entries whose plugins are installed here
    known = [e.model_dump(mode="json") for e in cfg.entries if e.preset in registry("model")]
    if known:
        validate(parse_config({**raw, "device": "cpu", "entries": known}))


def test_peer_subjects_are_registered_by_plugins():
    """The core bench knows only maeflow presets; the Hugging Face twin is the image plugin's."""
    from maeflow.bench.subjects import MaeflowSubject, subject_class
    from maeflow.plugins import registry

    assert subject_class("maeflow") is MaeflowSubject
    hf = registry("bench_subject").get("hf_vitmae")
    assert subject_class("hf_vitmae") is hf and hf.__module__ == "maeflow_image.hf_twin" and hf.peer
