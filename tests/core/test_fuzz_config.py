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
