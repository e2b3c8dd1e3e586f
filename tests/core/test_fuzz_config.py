"""Fuzzing config values: random values for random keys of the run config's sections and of a
test preset's model arguments go through ``config_from_dict`` and ``create_model``; the only
exception that may come out is a ``ValueError`` (the CLI's one-line error, exit code 2)."""

import dataclasses
import math

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import maeflow  # noqa: E402
from maeflow.config import Config, config_from_dict  # noqa: E402
from maeflow.plugins import registry  # noqa: E402

PRESETS = ["mae_vit_test", "videomae_vit_test", "audiomae_vit_test", "pointmae_test"]
SECTIONS = {name: list(Config.model_fields[name].annotation.model_fields) for name in ("data", "train", "eval", "run")}

# small numbers only: a fuzzed depth or width must not build a huge model
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 64),
    st.floats(-2.0, 70.0, allow_nan=False) | st.sampled_from([math.nan, math.inf, -math.inf, 1e-9]),
    st.text(max_size=8),
    st.sampled_from(["auto", "random", "tube", "global", "local", "first", "mask", "keep", "fp32"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def base(preset: str) -> dict:
    return {"model": {"name": preset}, "data": {"name": "digits"}}


def model_fields(preset: str) -> list[str]:
    model = maeflow.create_model(preset)
    return [f.name for f in dataclasses.fields(model.config)]


FIELDS = {p: model_fields(p) for p in PRESETS}


@st.composite
def configs(draw):
    preset = draw(st.sampled_from(PRESETS))
    data = base(preset)
    for _ in range(draw(st.integers(0, 3))):
        section = draw(st.sampled_from(sorted(SECTIONS)))
        key = draw(st.sampled_from(SECTIONS[section]) | st.text(min_size=1, max_size=6))
        data.setdefault(section, {})[key] = draw(values)
    args = {}
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(FIELDS[preset]) | st.text(min_size=1, max_size=6))
        args[key] = draw(values)
    data["model"]["args"] = args
    return data


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_fuzzed_config_values_fail_only_with_value_error(data):
    try:
        cfg = config_from_dict(data, env={})
        registry("dataset").get(cfg.data.name)
    except ValueError:
        return
    try:
        model = maeflow.create_model(cfg.model.name, **cfg.model.args)
    except ValueError:
        return
    assert model.model_name == cfg.model.name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PRESETS), st.data())
def test_fuzzed_model_arguments_fail_only_with_value_error(preset, data):
    key = data.draw(st.sampled_from(FIELDS[preset]))
    value = data.draw(values)
    try:
        maeflow.create_model(preset, **{key: value})
    except ValueError:
        pass


# keys left alone in CLI runs: where the run goes, and what would make one example slow
SLOW_OR_PATHS = {"output_dir", "resume", "threads", "num_workers", "persistent_workers", "prefetch_factor",
                 "compile", "epochs", "max_steps", "depth", "decoder_depth", "embed_dim", "img_size"}  # fmt: skip


def override(section: str, key: str, value) -> str:
    import json

    return f"{section}.{key}={json.dumps(value)}"  # JSON is YAML: the CLI reads it back as given


FINITE = scalars.filter(lambda v: not (isinstance(v, float) and not math.isfinite(v)))
CLI_SETTINGS = settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


@CLI_SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["train", "data", "run", "model.args"]), st.data()), min_size=1, max_size=2))
def test_fuzzed_overrides_through_the_cli_exit_0_or_2(tmp_path_factory, items):
    from maeflow.cli import main

    out = tmp_path_factory.mktemp("fuzz")
    cfg = out / "tiny.yaml"
    cfg.write_text("model: {name: mae_vit_test}\ndata: {name: digits, batch_size: 16, num_workers: 0}\n"
                   "train: {max_steps: 1, progress: false, tensorboard: false, reconstruction: false}\n"
                   f"run: {{output_dir: {out / 'run'}, resume: never}}\n")  # fmt: skip
    args = []
    for section, data in items:
        keys = FIELDS["mae_vit_test"] if section == "model.args" else SECTIONS[section]
        key = data.draw(st.sampled_from([k for k in keys if k not in SLOW_OR_PATHS]))
        args.append(override(section, key, data.draw(FINITE)))
    assert main(["train", str(cfg), *args]) in (0, 2)
