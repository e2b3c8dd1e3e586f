"""The modality-free display helper the figure plugins share."""

import numpy as np
import torch

from maeflow.visualize import to_display


def test_to_display_unnormalizes_clamps_and_greys_hidden_pixels():
    img = torch.tensor([[[0.0, 2.0], [-2.0, 1.0]]])  # (1, 2, 2), normalized with mean 0.5, std 0.25
    hidden = torch.tensor([[[False, False], [False, True]]])
    out = to_display(img, [0.5], [0.25], hidden, fill=0.3)
    np.testing.assert_allclose(out, [[0.5, 1.0], [0.0, 0.3]])  # 0.5+2*0.25=1.0, -2 → 0 (clamped)
    rgb = to_display(torch.zeros(3, 4, 5))
    assert rgb.shape == (4, 5, 3)
    assert to_display(torch.zeros(2, 4, 5)).shape == (4, 5)
