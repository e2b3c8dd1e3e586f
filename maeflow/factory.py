"""``create_model`` / ``list_models`` over the model registry, and the override helper presets use."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from maeflow._errors import unknown_name_message
from maeflow.plugins import registry

T = TypeVar("T")


def apply_overrides(config: T, overrides: dict[str, Any], what: str = "model") -> T:
    """``dataclasses.replace`` that rejects unknown fields with the valid names."""
    valid = {f.name for f in dataclasses.fields(config)}
    for key in overrides:
        if key not in valid:
            raise ValueError(unknown_name_message(f"{what} option", key, valid))
    return dataclasses.replace(config, **overrides)


def preset(build: Callable[[Any], Any], config_cls: type, **defaults: Any) -> Callable[..., Any]:
    """A model-registry builder: ``builder(**overrides)`` builds ``build(config_cls(**defaults)
    with the overrides applied)``; unknown overrides raise ``ValueError`` naming the valid
    fields. Presets are then one line each::

        registry.model("mae_vit_base_patch16", maeflow.preset(build_image_mae, ImageMAEConfig, embed_dim=768))
    """
    base = config_cls(**defaults)

    def builder(**overrides: Any):
        return build(apply_overrides(base, overrides))

    return builder


def create_model(name: str, **overrides: Any):
    """Build a registered model preset, e.g. ``create_model("mae_vit_base_patch16", img_size=128)``.

    Unknown names and unknown overrides raise ``ValueError`` listing the valid ones.
    """
    builder = registry("model").get(name)
    model = builder(**overrides)
    model.model_name = name
    model.model_args = dict(overrides)
    return model


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style wildcard, e.g. ``list_models("mae_*")``."""
    return registry("model").names(pattern)
