"""The point-cloud reconstruction figure, through the core's dispatch by modality."""

import torch

import maeflow
from maeflow.visualize import visualize


def test_figure_is_written(tmp_path):
    model = maeflow.create_model("pointmae_test")
    x = model.tokenizer.example_inputs(2, generator=torch.Generator().manual_seed(0))
    path = visualize(model, x, tmp_path / "recon.png", num_samples=2)
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    fn = maeflow.registry("visualizer").get("pointcloud")
    out = model.eval()(x)
    path2 = fn(model, x, out, tmp_path / "enc_only.png", decoder_trained=False)
    assert open(path2, "rb").read()[:4] == b"\x89PNG"
