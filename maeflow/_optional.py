"""Optional dependencies: imported where a feature needs them, with the install command when missing.

A plugin's decoding libraries (PyAV for video files, soundfile and torchaudio for audio) are
extras (``pip install 'maeflow[video]'``), so registering the plugin and building its models
work without them; only reading such data does not::

    av = maeflow.import_optional("av", install="maeflow[video]", needed_for="reading video files")
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingDependency(ImportError):
    """An optional library a feature needs is not installed; the message is one line that says
    what to install. The CLI prints it as such, without a traceback."""


def import_optional(module: str, install: str, needed_for: str) -> ModuleType:
    """``importlib.import_module(module)``, or :class:`MissingDependency` naming ``install``
    (a pip requirement such as ``"maeflow[video]"``) when the library is not installed.

    A library that is installed but fails to import (a missing system library, say) raises
    :class:`MissingDependency` too, with the original error in the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        absent = isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == top
        why = "which is not installed" if absent else f"which fails to import ({exc})"
        raise MissingDependency(f"{needed_for} needs {top!r}, {why}: pip install {install!r}") from exc
