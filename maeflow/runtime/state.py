"""Trainer-state checkpoint IO: maeflow's model payload plus everything needed to resume exactly.

A checkpoint is a dict of tensors and primitives only (``torch.load(weights_only=True)``
reads it, and so do :func:`maeflow.load_checkpoint` / :func:`maeflow.model_from_checkpoint`)::

    {"format": "maeflow", "model_name", "model_args", "model": state_dict,
     "optimizer", "scheduler", "scaler", "rng": [per-rank states], "progress": {...},
     "config": resolved config as plain data, "version": 1}

Files are ``<dir>/step-00001234.pt``, written atomically (a temp file in the same folder, then
``os.replace``); ``last.pt`` is a hard link to the newest one (a copy where links are not
possible). A save that fails — a full disk is :class:`DiskFullError`, saying how much space it
needed — leaves the earlier files and ``last.pt`` as they were.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from maeflow.utils.io import atomic_write

log = logging.getLogger(__name__)

VERSION = 1
_STEP_FILE = re.compile(r"^step-(\d+)\.pt$")
NO_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})  # disk full, quota exceeded


class DiskFullError(OSError):
    """No space left for a checkpoint; the message says how much the save needed and that the
    earlier checkpoints are untouched. ``errno`` is ``ENOSPC`` (or ``EDQUOT``)."""

    def __str__(self) -> str:
        return str(self.strerror)


def rng_state() -> dict[str, Any]:
    """This process's RNG states (python, numpy, torch, CUDA) as tensors and primitives."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            log.warning(
                "checkpoint has CUDA RNG states for %d devices, this machine has %d; not restored",
                len(cuda),
                torch.cuda.device_count(),
            )


def nonfinite_tensors(state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Names of floating-point tensors holding NaN or inf."""
    return [k for k, v in state_dict.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]  # fmt: skip


def step_path(directory: str | os.PathLike, step: int) -> Path:
    return Path(directory) / f"step-{step:08d}.pt"


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of the step files in ``directory``, oldest first."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _STEP_FILE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def save_checkpoint(state: dict[str, Any], directory: str | os.PathLike, step: int, keep_last: int) -> Path:
    """Write ``state`` atomically as ``step-<step>.pt``, point ``last.pt`` at it, and delete all
    but the newest ``keep_last`` step files. Refuses (ValueError) to write non-finite weights."""
    bad = nonfinite_tensors(state["model"])
    if bad:
        raise ValueError(f"refusing to write a checkpoint with non-finite weights ({len(bad)} tensors, "
                         f"e.g. {bad[0]}); the previous checkpoint is kept")  # fmt: skip
    directory = Path(directory)
    path, data = step_path(directory, step), None
    try:
        buf = io.BytesIO()
        torch.save(state, buf)
        data = buf.getvalue()
        atomic_write(path, data)  # a failed write leaves no temp file and no step file
        try:
            _link_last(path)
        except OSError:
            path.unlink(missing_ok=True)  # last.pt stays the newest complete checkpoint
            raise
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            raise
        needed = len(data) if data is not None else _tensor_bytes(state)
        raise DiskFullError(exc.errno, _disk_full_message(path, needed)) from None
    for _, old in list_checkpoints(directory)[:-keep_last]:
        old.unlink(missing_ok=True)
    return path


def _link_last(path: Path) -> None:
    last = path.parent / "last.pt"
    tmp = path.parent / f".last.pt.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(path, tmp)
        except OSError:  # filesystems without hard links
            shutil.copyfile(path, tmp)
        os.replace(tmp, last)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in ``obj`` (nested dicts/lists): about what ``torch.save`` writes."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _disk_full_message(path: Path, needed: int) -> str:
    try:
        free = f", {_size(shutil.disk_usage(path.parent).free)} free"
    except OSError:
        free = ""
    older = list_checkpoints(path.parent)
    kept = (f"the earlier checkpoints ({older[-1][1].name} newest) and last.pt are unchanged. Free some space "
            "and run the same command again to resume from it" if older
            else "nothing was written. Free some space and run the command again")  # fmt: skip
    return f"no space left on the device for checkpoint {path}: the save needs {_size(needed)}{free}; {kept}"


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a trainer checkpoint with ``weights_only=True``; ValueError if unreadable."""
    from maeflow.checkpoint import read_file

    path = Path(path)
    state = read_file(path)  # FileNotFoundError, or one-line ValueError saying why it is unreadable
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path} is not a maeflow trainer checkpoint (no 'model' entry)")
    return state


def find_resumable(directory: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint in ``directory`` that loads and holds trainer state (a damaged
    newest file is reported and the one before it used); None when there is none."""
    directory = Path(directory)
    candidates = [p for _, p in reversed(list_checkpoints(directory))]
    last = directory / "last.pt"
    if last.is_file():
        candidates.insert(0, last)
    for path in candidates:
        try:
            state = read_checkpoint(path)
        except (ValueError, FileNotFoundError) as exc:
            log.warning("skipping unreadable checkpoint %s: %s", path, exc)
            continue
        if "progress" in state and "optimizer" in state:
            return path, state
        log.warning("skipping %s: no trainer state inside (a model-only file)", path)
    return None


def resume_source(how: str, directory: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """What ``run.resume`` names: ``never`` → None; ``auto`` → the newest resumable checkpoint in
    ``directory`` (None when there is none); else that file, which must hold trainer state."""
    if how == "never":
        return None
    if how == "auto":
        return find_resumable(directory)
    path = Path(how)
    state = read_checkpoint(path)
    if "progress" not in state or "optimizer" not in state:
        raise ValueError(f"{path} holds no trainer state (optimizer, progress); it cannot be resumed. "
                         "To start from its weights, load them into the model instead")  # fmt: skip
    return path, state


# what a resumed run must share with the run that saved the checkpoint: the model and the data
# order (not output paths, logging, evaluation, or epochs/max_steps: extending a run is fine)
RESUME_KEYS = ("model", "data.name", "data.options", "data.split", "data.shuffle", "data.batch_size",
               "train.accum_iter", "train.effective_batch_size", "train.mask_seed", "run.seed")  # fmt: skip
_UNSET = "<unset>"


def _leaves(value: Any, key: str) -> dict[str, Any]:
    if isinstance(value, dict):  # an empty mapping has no leaves
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{key}.{k}"))
        return out
    return {key: value}


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _UNSET
        node = node[part]
    return node


def config_changes(saved: dict[str, Any], current: dict[str, Any], keys=RESUME_KEYS) -> list[str]:
    """``["model.args.depth: 2 -> 3", ...]``: where ``current`` differs from ``saved`` (resolved
    configs as plain data) under ``keys``, each compared leaf by leaf."""
    changes = []
    for key in keys:
        old, new = _leaves(_lookup(saved, key), key), _leaves(_lookup(current, key), key)
        for leaf in sorted(set(old) | set(new)):
            a, b = old.get(leaf, _UNSET), new.get(leaf, _UNSET)
            if a != b:
                changes.append(f"{leaf}: {a} -> {b}")
    return changes


def check_resume_config(path: str | os.PathLike, saved: dict[str, Any] | None, current: dict[str, Any] | None,
                        mismatch: str = "refuse") -> list[str]:  # fmt: skip
    """Refuse (``ValueError`` naming the keys) to resume ``path``, saved under config ``saved``,
    with a ``current`` config that changes the model or the data order, unless ``mismatch`` is
    ``"allow"`` (then the changes are logged). Returns the changes; none when either config is
    missing (a trainer used without a config)."""
    if not saved or not current:
        return []
    changes = config_changes(saved, current)
    if not changes:
        return changes
    listed = "; ".join(changes)
    if mismatch != "allow":
        raise ValueError(f"cannot resume {path}: its run had another model or data order ({listed}). Use the "
                         "saved values, another run.output_dir (or run.resume=never) to start over, or "
                         "run.resume_mismatch=allow to resume anyway")  # fmt: skip
    log.warning("resuming %s with a changed config (run.resume_mismatch=allow): %s", path, listed)
    return changes


def capture(strategy, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The full model and optimizer states and every process's RNG states (collective: call on
    every rank; ``strategy`` is a :class:`maeflow.runtime.Strategy`)."""
    return {
        "version": VERSION,
        "model": strategy.model_state(model),
        "optimizer": strategy.optimizer_state(model, optimizer),
        "rng": strategy.gather_object(rng_state()),
    }


def restore(strategy, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load what :func:`capture` saved; RNG states only when the process count is the same."""
    strategy.load_state(model, optimizer, state["model"], state["optimizer"])
    rng, world = state.get("rng") or [], strategy.world_size
    if len(rng) == world:
        set_rng_state(rng[strategy.dist.rank])
    elif rng:
        log.warning("checkpoint has RNG states of %d processes, this run has %d; RNG not restored", len(rng), world)
