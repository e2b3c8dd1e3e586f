"""Configs as validated data: every shipped YAML validates; unknown keys fail helpfully."""

from pathlib import Path

import pytest

from maeflow.config import Config, check_registered, config_from_dict, load_config
from maeflow.train import Trainer

ROOT = Path(__file__).resolve().parents[2] / "configs"
CONFIGS = sorted(ROOT.rglob("*.yaml"))
BASE = {"model": {"name": "mae_vit_test"}, "data": {"name": "digits"}}


class AnyEnv(dict):
    """Every ``${VAR}`` resolves (to a placeholder path) so user paths don't block validation."""

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return f"/env/{key}"


def test_configs_exist():
    assert any(p.name == "demo.yaml" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_shipped_config_validates(path):
    text = path.read_text()
    first = text.splitlines()[0]
    assert first.startswith("# ") and "maeflow" in first, f"{path.name} must start with the command that runs it"
    if path.parent.name == "bench":  # the bench schema, same grammar (registry checks: tests/bench)
        from maeflow.bench import load_config as load_bench_config

        assert load_bench_config(path, env=AnyEnv())[0].entries
        return
    if path.name.startswith(("finetune_", "linprobe_")):  # the downstream schema (tests/downstream)
        from maeflow.downstream import load_downstream_config

        assert load_downstream_config(path, env=AnyEnv()).task in path.name
        return
    cfg = load_config(path, env=AnyEnv())
    check_registered(cfg)
    Trainer(None, [], cfg.train, cfg.data, cfg.run, cfg.eval)  # the recipe takes the sections as they are


def test_imagenet_recipes_follow_the_paper():
    for size in ("base", "large"):
        cfg = load_config(ROOT / "image" / f"mae_vit_{size}_patch16_imagenet.yaml",
                          env={"IMAGENET_ROOT": "/data/imagenet"})  # fmt: skip
        t = cfg.train
        assert (t.epochs, t.effective_batch_size, t.base_lr, t.warmup_epochs) == (800, 4096, 1.5e-4, 40)
        assert tuple(t.betas) == (0.9, 0.95) and t.weight_decay == 0.05
        assert cfg.model.args["norm_pix_loss"] is True
        assert cfg.data.name == "image_folder" and cfg.data.options["root"] == "/data/imagenet"


def test_unknown_key_in_file_names_it_with_valid_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: {name: mae_vit_test}\ndata: {name: digits}\ntrain: {epocs: 3}\n")
    with pytest.raises(ValueError) as exc:
        load_config(path)
    msg = str(exc.value)
    assert "'train.epocs'" in msg and "did you mean 'epochs'?" in msg and "warmup_epochs" in msg


def test_unknown_top_level_section():
    with pytest.raises(ValueError, match=r"unknown key 'optim'.*Valid names: data, eval, model, run, train"):
        config_from_dict({**BASE, "optim": {}})


def test_overrides_are_yaml_scalars_and_checked():
    cfg = config_from_dict(BASE, {"train.epochs": 7, "train.betas": [0.8, 0.9], "model.args.depth": 1,
                                  "data.options.img_size": 16})  # fmt: skip
    assert cfg.train.epochs == 7 and cfg.train.betas == (0.8, 0.9)
    assert cfg.model.args == {"depth": 1} and cfg.data.options == {"img_size": 16}
    with pytest.raises(ValueError, match=r"override 'run.outdir'.*did you mean 'output_dir'"):
        config_from_dict(BASE, {"run.outdir": "x"})
    cfg = load_config(ROOT / "image" / "demo.yaml", ["train.epochs=2", "run.seed=3"])
    assert cfg.train.epochs == 2 and cfg.run.seed == 3


def test_bad_values_name_the_key():
    with pytest.raises(ValueError, match=r"train.precision: Input should be 'auto', 'fp32', 'bf16' or 'fp16'"):
        config_from_dict(BASE, {"train.precision": "fp8"})
    with pytest.raises(ValueError, match=r"data.batch_size: Input should be greater than 0"):
        config_from_dict(BASE, {"data.batch_size": 0})
    with pytest.raises(ValueError, match="either train.accum_iter or train.effective_batch_size"):
        config_from_dict(BASE, {"train.accum_iter": 2, "train.effective_batch_size": 64})
    with pytest.raises(ValueError, match=r"model: Field required"):
        config_from_dict({"data": {"name": "digits"}})


def test_unknown_component_names_are_reported():
    with pytest.raises(ValueError, match=r"unknown model 'mae_vit_tset'.*did you mean 'mae_vit_test'"):
        check_registered(config_from_dict({**BASE, "model": {"name": "mae_vit_tset"}}))
    with pytest.raises(ValueError, match=r"unknown dataset 'digit'"):
        check_registered(config_from_dict({**BASE, "data": {"name": "digit"}}))


def test_env_interpolation():
    data = {**BASE, "data": {"name": "image_folder", "options": {"root": "${DATA}/train", "x": "${NOPE:-dflt}"}}}
    cfg = config_from_dict(data, env={"DATA": "/d"})
    assert cfg.data.options == {"root": "/d/train", "x": "dflt"}
    with pytest.raises(ValueError, match=r"'data.options.root' uses \$\{DATA\}.*export DATA="):
        config_from_dict(data, env={})
    # an override of the key replaces the reference, so the variable is not needed
    cfg = config_from_dict(data, {"data.options.root": "/mine"}, env={})
    assert cfg.data.options["root"] == "/mine"


def test_resolved_config_is_plain_data():
    cfg = config_from_dict(BASE)
    d = cfg.to_dict()
    assert d["train"]["betas"] == [0.9, 0.95] and d["run"]["resume"] == "auto"
    assert Config.model_validate(d) == cfg  # round trip


def test_one_grammar_for_run_bench_and_cli():
    """Overrides, ${ENV} and key checks are one implementation (maeflow._configio)."""
    import maeflow._configio as io
    import maeflow.bench.config as bench
    import maeflow.cli.common as cli
    import maeflow.config as run

    assert cli.parse_overrides is io.parse_overrides and cli.parse_value is io.parse_value
    for module in (run, bench):
        assert module.set_dotted is io.set_dotted and module.interpolate_env is io.interpolate_env
        assert module.check_keys is io.check_keys and module.validate is io.validate
    assert io.parse_overrides(["a.b=3", "c=[1, 2]", "d=x=y", "e=null", "f={lr: 1}"]) == {
        "a.b": 3, "c": [1, 2], "d": "x=y", "e": None, "f": {"lr": 1}}  # fmt: skip
    with pytest.raises(ValueError, match="not of the form key=value"):
        io.parse_overrides(["train.epochs"])
    with pytest.raises(ValueError, match="not a dotted key"):
        config_from_dict(BASE, {"train..epochs": 1})


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config("no/such/config.yaml")
