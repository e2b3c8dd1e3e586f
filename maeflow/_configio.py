"""The one grammar of maeflow's YAML configs: overrides, ``${ENV}`` references, key checks and
validation messages, shared by the run config (:mod:`maeflow.config`), the downstream config
(:mod:`maeflow.downstream.config`) and the bench config (:mod:`maeflow.bench.config`);
:func:`config_from_data` / :func:`load_config_file` are the whole path from data or a file to a
validated schema.

- An override is ``dotted.key=value``; the value is read as YAML (``3``, ``0.5``, ``true``,
  ``null``, ``[0.9, 0.95]``, ``{lr: 1e-3}``; anything else stays a string). Each part of the key
  is checked against the schema as far as the schema has named fields; below a free-form mapping
  (``model.args``, ``data.options``, ...) any key may be set.
- A string value may reference environment variables as ``${NAME}`` or ``${NAME:-default}``;
  an unset variable without a default fails naming the key and the variable.
- An unknown key, in a file or an override, fails naming it, the keys valid there and a close
  match.
- pydantic's errors become one line, ``where: message; where: message``.

A schema is a pydantic model; a field whose annotation is a model (or a union or optional with
exactly one model in it) is a section whose keys are checked too.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from maeflow._errors import unknown_name_message

KeyPath = tuple[str, ...]


def parse_value(text: str) -> Any:
    """An override's value as YAML: ``3``, ``0.5``, ``true``, ``[224, 224]``; unparsable text stays a string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["train.epochs=5", ...]`` → ``{"train.epochs": 5}``."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(value)
    return out


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """The YAML document at ``path`` (an empty file is ``{}``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"cannot parse {path}: {exc}") from None


def section_schema(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: the annotation itself, or the one model in a union/optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
    return None


def _field_schema(schema: type[BaseModel], key: str) -> type[BaseModel] | None:
    field = schema.model_fields.get(key)
    return section_schema(field.annotation) if field is not None else None


def _where(path: KeyPath) -> str:
    return ".".join(path) or "top level"


def check_keys(data: Any, schema: type[BaseModel] | None, path: KeyPath = ()) -> None:
    """Unknown keys in nested ``data`` fail naming the key, the valid keys there and a close match."""
    if schema is None or not isinstance(data, Mapping):
        return
    for key, value in data.items():
        if key not in schema.model_fields:
            full = ".".join((*path, str(key)))
            raise ValueError(
                f"config key {full!r} ({_where(path)}): " + unknown_name_message("key", key, list(schema.model_fields))
            )
        check_keys(value, _field_schema(schema, key), (*path, str(key)))


def set_dotted(
    data: dict[str, Any], key: str, value: Any, schema: type[BaseModel] | None = None,
    prefix: KeyPath = (), label: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Set ``key`` (``"train.epochs"``) to ``value`` in nested ``data`` (in place, returned), each
    part checked against ``schema``. ``prefix`` is where ``data`` sits in the whole config and
    ``label`` the override as the user wrote it (both for messages only)."""
    label = key if label is None else label
    parts = key.split(".")
    if not all(parts):
        raise ValueError(f"override key {label!r} is not a dotted key like train.epochs")
    node = data
    for i, part in enumerate(parts):
        if schema is not None and part not in schema.model_fields:
            where = _where((*prefix, *parts[:i]))
            valid = list(schema.model_fields)
            raise ValueError(f"override {label!r} ({where}): " + unknown_name_message("key", part, valid))
        if i == len(parts) - 1:
            node[part] = value
            break
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
        schema = _field_schema(schema, part) if schema is not None else None
    return data


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate_env(data: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in the strings of nested ``data`` (a new copy)."""
    if isinstance(data, dict):
        return {k: interpolate_env(v, env, f"{path}.{k}" if path else str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate_env(v, env, f"{path}[{i}]") for i, v in enumerate(data)]
    if not isinstance(data, str):
        return data

    def sub(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ValueError(
            f"config key {path!r} uses ${{{name}}}, but the environment variable {name} is not set: "
            f"export {name}=... or override it, e.g. {path}=/your/path"
        )

    return _ENV.sub(sub, data)


def format_validation_error(exc: ValidationError, where: Callable[[tuple], Iterable[Any]] | None = None) -> str:
    """pydantic's errors as ``loc: message; loc: message``; ``where`` may rename a location
    (the bench names entries instead of numbering them)."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"]) if where is None else tuple(where(tuple(err["loc"])))
        text = ".".join(str(p) for p in loc)
        lines.append(f"{text}: {err['msg']}" if text else err["msg"])
    return "; ".join(lines)


def validate(schema: type[BaseModel], data: Any, where: Callable[[tuple], Iterable[Any]] | None = None) -> Any:
    """``schema.model_validate(data)``, its errors as one ``ValueError`` (see :func:`format_validation_error`)."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc, where)) from None


def plain(obj: Any) -> Any:
    """Mappings as ``dict`` with ``str`` keys and sequences as ``list``, all the way down."""
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def config_from_data(schema: type[BaseModel], data: Any, overrides: Mapping[str, Any] | None = None,
                     env: Mapping[str, str] | None = None) -> Any:  # fmt: skip
    """Nested ``data`` (+ dotted ``overrides``, then ``${ENV}`` from ``env``, default
    ``os.environ``) checked key by key and validated into ``schema``."""
    import os

    if not isinstance(data, Mapping):
        raise ValueError(f"a config must be a mapping of sections, got {type(data).__name__}")
    merged = plain(dict(data))
    check_keys(merged, schema)
    for dotted, value in dict(overrides or {}).items():
        set_dotted(merged, dotted, value, schema)
    merged = interpolate_env(merged, os.environ if env is None else env)
    try:
        return validate(schema, merged)
    except ValueError as exc:
        raise ValueError(f"invalid config: {exc}") from None


def load_config_file(schema: type[BaseModel], path: str | Path, overrides: Iterable[str] | Mapping[str, Any] | None,
                     env: Mapping[str, str] | None = None) -> Any:  # fmt: skip
    """Read the YAML file at ``path`` and :func:`config_from_data` it; ``overrides`` may be
    ``key=value`` strings. Errors name the file."""
    data = read_yaml(path, "config file")
    if overrides is not None and not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    try:
        return config_from_data(schema, data, overrides, env)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
