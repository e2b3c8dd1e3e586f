"""Metrics output of a run: JSON lines (always) and TensorBoard (when installed).

Every line of ``metrics.jsonl`` is strict JSON: a non-finite number (a NaN loss) is written as
``null`` with a flag beside it, ``"loss": null, "loss_nonfinite": "nan"`` (or ``"inf"``,
``"-inf"``), so that any JSON reader takes the file."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class MetricsLogger:
    """Appends one JSON object per record to ``<run>/metrics.jsonl`` and mirrors numeric values
    to TensorBoard under ``<run>/tensorboard``. ``enabled=False`` (non-zero ranks) writes nothing."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self._file = None
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # appending: a resumed run continues the log
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))
            except Exception as exc:  # tensorboard not installed or broken: JSON lines still work
                log.info("TensorBoard logging off (%s)", exc)

    def write(self, record: dict[str, Any], step: int | None = None) -> None:
        if not self.enabled:
            return
        record = strict_record({"time": round(time.time(), 3), **record})
        self._file.write(json.dumps(record, default=_jsonable, allow_nan=False) + "\n")
        self._file.flush()
        if self._tb is not None and step is not None:
            kind = record.get("type", "train")
            for key, value in record.items():
                if key in ("time", "type", "step") or isinstance(value, bool):
                    continue
                if isinstance(value, (int, float)) and math.isfinite(value):  # null (non-finite) is left out
                    self._tb.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def strict_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with each non-finite number (also inside nested dicts and lists) replaced by
    ``None`` and flagged as ``<key>_nonfinite``: ``"nan"``, ``"inf"`` or ``"-inf"``."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        value = _plain(value)
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = None
            out[f"{key}_nonfinite"] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        elif isinstance(value, dict):
            out[key] = strict_record(value)
        elif isinstance(value, (list, tuple)):
            out[key] = [None if isinstance(v, float) and not math.isfinite(v) else v for v in map(_plain, value)]
        else:
            out[key] = value
    return out


def _plain(value: Any) -> Any:
    """Tensors and numpy scalars as Python numbers (one-element ones; others are left to ``_jsonable``)."""
    if not isinstance(value, (bool, int, float, str, type(None), dict, list, tuple)) and hasattr(value, "item"):
        try:
            return value.item()
        except (ValueError, RuntimeError):
            return value
    return value


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
