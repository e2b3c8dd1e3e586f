"""Small helpers shared by CLI commands. ``key=value`` arguments follow the config grammar
(:mod:`maeflow._configio`): values are read as YAML scalars/lists."""

from __future__ import annotations

from maeflow._configio import parse_overrides, parse_value

__all__ = ["parse_overrides", "parse_value"]
