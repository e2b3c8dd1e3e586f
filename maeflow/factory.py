"""``create_model`` / ``list_models`` over the model registry, and the override helper presets use."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from maeflow._errors import unknown_name_message
from maeflow.plugins import registry

T = TypeVar("T")


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return f"a list of {len(args)} ({', '.join(_type_name(a) for a in args)})"
    if origin is list:
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _matches(value: Any, annotation: Any) -> bool:
    """``value`` fits ``annotation`` (int, float (an int too), bool, str, tuples/lists (YAML
    gives lists for tuples), Optional/unions, Literal, dict); other annotations accept anything."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args, strict=True))
        return not args or all(_matches(v, args[0]) for v in value)
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return True


def check_types(config_cls: type, overrides: dict[str, Any], what: str = "model") -> None:
    """Each override against the type annotation of ``config_cls``'s field: ``ValueError`` naming
    the key, the expected type and the given value."""
    hints = typing.get_type_hints(config_cls)
    for key, value in overrides.items():
        annotation = hints.get(key, Any)
        if not _matches(value, annotation):
            raise ValueError(f"{what} option {key!r} must be {_type_name(annotation)}, "
                             f"got {value!r} ({type(value).__name__})")  # fmt: skip


def apply_overrides(config: T, overrides: dict[str, Any], what: str = "model") -> T:
    """``dataclasses.replace`` that rejects unknown fields with the valid names and values whose
    type does not fit the field's annotation (:func:`check_types`)."""
    valid = {f.name for f in dataclasses.fields(config)}
    for key in overrides:
        if key not in valid:
            raise ValueError(unknown_name_message(f"{what} option", key, valid))
    check_types(type(config), overrides, what)
    return dataclasses.replace(config, **overrides)


def preset(build: Callable[[Any], Any], config_cls: type, **defaults: Any) -> Callable[..., Any]:
    """A model-registry builder: ``builder(**overrides)`` builds ``build(config_cls(**defaults)
    with the overrides applied)``; unknown overrides raise ``ValueError`` naming the valid
    fields, and overrides of the wrong type (per the dataclass's annotations) one naming the
    expected type. Presets are then one line each::

        registry.model("mae_vit_base_patch16", maeflow.preset(build_image_mae, ImageMAEConfig, embed_dim=768))
    """
    base = config_cls(**defaults)

    def builder(**overrides: Any):
        cfg = apply_overrides(base, overrides)
        from maeflow.vit_mae import ViTMAEConfig, check_vit_config

        if isinstance(cfg, ViTMAEConfig):
            check_vit_config(cfg)  # before the tokenizer is made of the same widths
        if not overrides:
            return build(cfg)
        try:
            return build(cfg)
        except (RuntimeError, ZeroDivisionError, OverflowError, TypeError, IndexError) as exc:
            # the preset builds with its defaults, so this came from the overrides: name them
            given = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
            raise ValueError(f"cannot build the model with {given}: {type(exc).__name__}: {exc}") from None

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
