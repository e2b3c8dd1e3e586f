"""Checkpoint loading for maeflow's own format and foreign layouts, and model export.

maeflow's format is a dict ``{"format": "maeflow", "model_name", "model_args", "model":
state_dict, ...}`` (trainer checkpoints add optimizer and progress state beside it). Foreign
layouts (official MAE, Hugging Face, VideoMAE, ...) are handled by registered
``checkpoint_format`` objects::

    class MyFormat:
        description = "what files look like"
        modalities = ("image",)      # optional: the models' ``modality`` it serves (default: all)
        def detect(self, state_dict, model) -> bool: ...
        def to_maeflow(self, state_dict, model) -> dict: ...     # names of model.state_dict()
        def from_maeflow(self, state_dict, model) -> dict: ...   # optional: export

Files are read with ``torch.load(weights_only=True)`` or safetensors: never arbitrary pickles.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from maeflow._errors import unknown_name_message
from maeflow.plugins import registry

log = logging.getLogger(__name__)

FORMAT_TAG = "maeflow"
_WRAPPERS = ("model", "state_dict", "module", "base_model", "model_state")


@dataclass
class LoadResult:
    """What :func:`load_checkpoint` did: the detected format, the model parameters the source
    did not provide (``missing``), and source entries the model had no place for (``unexpected``)."""

    format: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def read_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint file (torch or safetensors) without unpickling arbitrary objects.

    Every unreadable file is a one-line ``ValueError`` saying why (empty, truncated, not a
    checkpoint at all, or holding Python objects that are not unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"cannot read checkpoint {path}: file is empty (0 bytes)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # SafetensorError, and OSError/ValueError for odd headers
            raise ValueError(f"cannot read checkpoint {path}: not a safetensors file, or a truncated or "
                             f"damaged one ({_one_line(exc)})") from None  # fmt: skip
    return torch_load(path)


def torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with its failures as one-line ``ValueError`` errors (no
    advice to retry with ``weights_only=False``, which would run whatever the file holds)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot read checkpoint {path}: {_torch_load_reason(exc)}") from None


def _torch_load_reason(exc: BaseException) -> str:
    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if found:
        return (f"it holds a Python object ({found.group(1)}) and maeflow reads only tensors and plain data; "
                "not a PyTorch/maeflow checkpoint, or one saved with objects inside")  # fmt: skip
    found = re.search(r"PytorchStreamReader failed reading zip archive: ([^.]+)", text)
    if found:
        return f"truncated or damaged file ({found.group(1)})"
    found = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    reason = found.group(1) if found else _one_line(exc)
    return f"not a PyTorch/maeflow checkpoint ({reason.strip()})"


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def unwrap(obj: Any) -> dict[str, torch.Tensor]:
    """Find the state dict inside common containers (``{"model": ...}``, DDP ``module.``)."""
    while isinstance(obj, dict):
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors and len(tensors) >= len(obj) // 2:
            break
        inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict):
        raise ValueError("checkpoint holds no state dict")
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _native_match(sd: dict[str, torch.Tensor], model: torch.nn.Module, exact: bool = False) -> bool:
    own = set(model.state_dict())
    hits = sum(k in own for k in sd)
    return bool(sd) and (hits == len(sd) if exact else hits >= max(1, len(sd) // 2))


def detect_format(sd: dict[str, torch.Tensor], model: torch.nn.Module) -> str:
    """maeflow's own names when every key fits the model; else the first registered format
    that recognizes the dict; else maeflow's names when at least half the keys fit. (Foreign
    layouts may share most names with maeflow's, e.g. VideoMAE's blocks, so they are asked
    before the loose match.)"""
    if _native_match(sd, model, exact=True):
        return FORMAT_TAG
    formats = registry("checkpoint_format")
    for entry in formats.entries():
        if not serves(entry.obj, model):
            continue
        try:
            if entry.obj.detect(sd, model):
                return entry.name
        except Exception:  # a format that cannot judge this model simply does not match
            continue
    if _native_match(sd, model):
        return FORMAT_TAG
    kind = f" ({model.modality})" if isinstance(getattr(model, "modality", None), str) else ""
    raise ValueError(f"could not recognize the checkpoint layout for this model{kind}; known formats: "
                     + ", ".join(formats_for(model)))  # fmt: skip


def serves(fmt: Any, model: torch.nn.Module) -> bool:
    """Whether a ``checkpoint_format`` is for this model: its ``modalities`` hold the model's
    ``modality`` (a format without ``modalities``, or a model without ``modality``: yes)."""
    modalities = getattr(fmt, "modalities", None)
    modality = getattr(model, "modality", None)
    return modalities is None or modality is None or modality in modalities


def formats_for(model: torch.nn.Module, export: bool = False) -> list[str]:
    """Names of the formats this model's weights can be read from (``export``: written to), maeflow's first."""
    names = [e.name for e in registry("checkpoint_format").entries()
             if serves(e.obj, model) and (not export or hasattr(e.obj, "from_maeflow"))]  # fmt: skip
    return [FORMAT_TAG, *names]


def _check_serves(name: str, fmt: Any, model: torch.nn.Module, export: bool) -> None:
    if serves(fmt, model):
        return
    what = f"{getattr(model, 'model_name', None) or type(model).__name__} is a {model.modality} model"
    raise ValueError(f"checkpoint format {name!r} is for {'/'.join(fmt.modalities)} models, and {what}; "
                     f"formats for {model.modality} models: {', '.join(formats_for(model, export))}")  # fmt: skip


def load_checkpoint(
    model: torch.nn.Module,
    source: str | os.PathLike | dict[str, Any],
    format: str = "auto",
    strict: bool = False,
) -> LoadResult:
    """Load weights into ``model`` from a path or a state dict, detecting the layout.

    Returns a :class:`LoadResult`; missing parameters (e.g. the decoder of an encoder-only
    file) are also logged. ``strict=True`` raises if anything is missing or unexpected. Shape
    mismatches always raise ``ValueError``.
    """
    raw = read_file(source) if isinstance(source, (str, os.PathLike)) else source
    sd = unwrap(raw)
    if format == "auto":
        format = detect_format(sd, model)
    if format != FORMAT_TAG:
        fmt = registry("checkpoint_format").get(format)
        _check_serves(format, fmt, model, export=False)
        sd = _convert(fmt.to_maeflow, sd, model, f"read the {format!r} layout")
    own = model.state_dict()
    bad = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in sd.items()
        if k in own and own[k].shape != v.shape
    ]
    if bad:
        raise ValueError(f"checkpoint does not fit the model ({len(bad)} tensors of other shapes): "
                         + "; ".join(bad[:4]) + (f"; ... ({len(bad) - 4} more)" if len(bad) > 4 else ""))  # fmt: skip
    result = model.load_state_dict(sd, strict=False)
    out = LoadResult(format, list(result.missing_keys), list(result.unexpected_keys))
    if out.missing:
        log.warning("checkpoint (%s) did not provide %d parameters: %s", format, len(out.missing), _brief(out.missing))
    if out.unexpected:
        log.warning("checkpoint (%s) had %d unused entries: %s", format, len(out.unexpected), _brief(out.unexpected))
    if strict and (out.missing or out.unexpected):
        raise ValueError(f"strict load failed: missing {out.missing}, unexpected {out.unexpected}")
    return out


def _brief(names: list[str], n: int = 6) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names) - n} more)" if len(names) > n else "")


def model_payload(model: torch.nn.Module) -> dict[str, Any]:
    """maeflow's own checkpoint content for a model built by ``create_model``."""
    return {
        "format": FORMAT_TAG,
        "model_name": getattr(model, "model_name", None),
        "model_args": dict(getattr(model, "model_args", {})),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def save_model(model: torch.nn.Module, path: str | os.PathLike) -> Path:
    """Write the model in maeflow's format (atomically)."""
    from maeflow.utils.io import atomic_torch_save

    return atomic_torch_save(model_payload(model), path)


def model_from_checkpoint(source: str | os.PathLike | dict[str, Any], **overrides: Any):
    """Rebuild a model from a maeflow checkpoint (its preset name and arguments) and load it.

    Returns ``(model, LoadResult)``.
    """
    from maeflow.factory import create_model

    raw = read_file(source) if isinstance(source, (str, os.PathLike)) else source
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_TAG or not raw.get("model_name"):
        raise ValueError(
            "not a maeflow checkpoint (no model name inside); build the model with "
            "create_model(...) and call load_checkpoint(model, source) instead"
        )
    args = {**raw.get("model_args", {}), **overrides}
    model = create_model(raw["model_name"], **args)
    return model, load_checkpoint(model, raw)


def export_state_dict(model: torch.nn.Module, format: str) -> dict[str, torch.Tensor]:
    """The model's weights in a registered foreign layout (``format``), e.g. ``"mae"``, ``"hf"``,
    ``"timm"`` for image models; a format for another modality is refused (``ValueError``
    listing the ones for this model)."""
    if format == FORMAT_TAG:
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}
    fmt = registry("checkpoint_format").get(format)
    _check_serves(format, fmt, model, export=True)
    if not hasattr(fmt, "from_maeflow"):
        raise ValueError(unknown_name_message("export format", format, formats_for(model, export=True)))
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return _convert(fmt.from_maeflow, sd, model, f"write the {format!r} layout")


def _convert(fn, sd: dict[str, torch.Tensor], model: torch.nn.Module, what: str) -> dict[str, torch.Tensor]:
    """A format's conversion; its failures (a KeyError for a name it has no rule for, ...) as
    one-line ``ValueError`` errors."""
    try:
        return fn(sd, model)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"cannot {what} for this model ({_one_line(exc)})") from exc


def write_state_dict(sd: dict[str, torch.Tensor], path: str | os.PathLike, wrap: str | None = None) -> Path:
    """Write a plain state dict as safetensors (by suffix) or torch (optionally ``{wrap: sd}``)."""
    from maeflow.utils.io import atomic_torch_save, atomic_write

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save

        return atomic_write(path, save({k: v.contiguous() for k, v in sd.items()}))
    return atomic_torch_save({wrap: sd} if wrap else sd, path)


def rename_prefixes(sd: dict[str, torch.Tensor], rules: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Rename keys by the first matching ``(old_prefix, new_prefix)`` rule; others stay as they are.

    Most layout conversions are a handful of such rules; formats use it both ways.
    """
    out = {}
    for key, value in sd.items():
        for old, new in rules:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out
