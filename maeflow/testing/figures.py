"""Check that a visualizer cannot make a model that predicts nothing look plausible."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch


def zero_prediction_figure(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    figure: Callable[..., Any],
    path: str | Path,
    seed: int = 1,
    **options: Any,
) -> tuple[list[np.ndarray], str]:
    """Draw ``figure(model, inputs, output, path, **options)`` for an ``output`` whose
    prediction is zero everywhere (the normalized-target mean: a model that learned nothing).

    Returns every array the figure passed to ``imshow`` (in call order) and its last caption
    (``suptitle``) with white space folded, so a test can assert that the honest mode
    (``denormalize="global"``) shows a flat picture and that the caption names the mode."""
    with torch.no_grad():
        out = model.eval()(inputs, generator=torch.Generator().manual_seed(seed))
    out = dataclasses.replace(out, pred=torch.zeros_like(out.pred))
    import matplotlib.axes
    import matplotlib.figure

    shown: list[np.ndarray] = []
    captions: list[str] = []
    real_imshow, real_suptitle = matplotlib.axes.Axes.imshow, matplotlib.figure.Figure.suptitle

    def imshow(self, a, *args, **kw):
        shown.append(np.asarray(a))
        return real_imshow(self, a, *args, **kw)

    def suptitle(self, t, *args, **kw):
        captions.append(t)
        return real_suptitle(self, t, *args, **kw)

    with mock.patch.object(matplotlib.axes.Axes, "imshow", imshow), \
            mock.patch.object(matplotlib.figure.Figure, "suptitle", suptitle):  # fmt: skip
        figure(model, inputs, out, path, **options)
    if not captions:
        raise AssertionError(f"{getattr(figure, '__name__', figure)} drew no caption (suptitle)")
    return shown, " ".join(captions[-1].split())  # the caption wraps to the figure width
