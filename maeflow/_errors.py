"""Helpers for error messages that tell the user what would have worked."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def unknown_name_message(what: str, name: str, valid: Iterable[str]) -> str:
    """``unknown model 'vit_bse': did you mean 'vit_base'? Valid names: a, b, c``."""
    valid = sorted(valid)
    msg = f"unknown {what} {name!r}"
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.6)
    msg += f": did you mean {close[0]!r}?" if close else "."
    shown = ", ".join(valid) if valid else "(none registered)"
    return f"{msg} Valid names: {shown}"
