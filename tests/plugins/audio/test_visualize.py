"""Spectrogram panels through maeflow's visualizer dispatch."""

import torch

import maeflow
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
