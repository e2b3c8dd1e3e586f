"""What the machine is, for run records and for keys of per-machine measurements."""

from __future__ import annotations

import functools
import platform


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (Linux: ``model name`` in ``/proc/cpuinfo``), else what
    :mod:`platform` knows, else ``"cpu"``. Read once per process."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


__all__ = ["cpu_model"]
