"""Spectrogram panels through maeflow's visualizer dispatch."""

import numpy as np
import torch

import maeflow
from maeflow.testing import zero_prediction_figure
from maeflow.visualize import visualize


def test_figure_is_written(tmp_path):
    model = maeflow.create_model("audiomae_vit_test")
    assert maeflow.registry("visualizer").get("audio").__name__ == "spectrogram_reconstruction_figure"
    x = torch.randn(3, 1, 64, 32)
    path = visualize(model, x, tmp_path / "fig.png", num_samples=2, mean=-7.0, std=4.7, frame_shift_ms=10.0)
    data = (tmp_path / "fig.png").read_bytes()
    assert path.endswith("fig.png") and data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    visualize(model, None, tmp_path / "enc_only.png", num_samples=1, decoder_trained=False)
    assert (tmp_path / "enc_only.png").stat().st_size > 1000


def test_zero_prediction_is_flat_in_global_mode_and_the_caption_names_the_mode(tmp_path):
    from maeflow_audio.visualize import spectrogram_reconstruction_figure

    model = maeflow.create_model("audiomae_vit_test")
    x = torch.randn(1, 1, 64, 32, generator=torch.Generator().manual_seed(0))
    for mode in ("patch", "global"):
        shown, caption = zero_prediction_figure(
            model, x, spectrogram_reconstruction_figure, tmp_path / f"{mode}.png", denormalize=mode,
            mean=-7.0, std=4.7,
        )  # fmt: skip
        recon = shown[2]  # original | masked | reconstruction | reconstruction + visible
        assert f"denormalize={mode}" in caption
        if mode == "global":
            assert np.ptp(recon) < 1e-4  # nothing predicted, nothing shown
        else:
            assert np.ptp(recon) > 0.1  # each patch's own level borrowed from the original
