"""docs/configs.md's bench key tables list exactly the bench config models' fields."""

import re
from pathlib import Path

import pytest

from maeflow.bench.config import BenchConfig, BenchEntry, DataSpec, OptimizerSpec

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configs.md"


def documented_keys(model_name: str) -> list[str]:
    text = DOCS.read_text(encoding="utf-8")
    marker = f"<!-- bench-keys:{model_name} -->"
    assert marker in text, f"docs/configs.md has no {marker} table"
    rows = text.split(marker, 1)[1].lstrip("\n").split("\n\n", 1)[0].splitlines()
    return [m.group(1) for row in rows[2:] if (m := re.match(r"\| `(\w+)` \|", row))]


@pytest.mark.parametrize("model", [BenchConfig, BenchEntry, DataSpec, OptimizerSpec], ids=lambda m: m.__name__)
def test_every_field_is_documented_once(model):
    keys = documented_keys(model.__name__)
    assert len(keys) == len(set(keys)), f"{model.__name__}: a key is listed twice: {keys}"
    fields = set(model.model_fields)
    assert set(keys) == fields, (
        f"docs/configs.md's {model.__name__} table is out of date: missing {sorted(fields - set(keys))}, "
        f"not fields {sorted(set(keys) - fields)}"
    )
