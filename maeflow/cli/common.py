"""Small helpers shared by CLI commands."""

from __future__ import annotations

from typing import Any

import yaml


def parse_value(text: str) -> Any:
    """``key=value`` values are read as YAML scalars/lists: ``3``, ``0.5``, ``true``, ``[224, 224]``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(value)
    return out
