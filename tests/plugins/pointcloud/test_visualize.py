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


def test_caption_says_predictions_are_drawn_as_predicted_in_either_mode(tmp_path, monkeypatch):
    import matplotlib.figure

    fn = maeflow.registry("visualizer").get("pointcloud")
    model = maeflow.create_model("pointmae_test").eval()
    x = model.tokenizer.example_inputs(1, generator=torch.Generator().manual_seed(0))
    out = model(x)
    captions = []
    real = matplotlib.figure.Figure.suptitle
    monkeypatch.setattr(
        matplotlib.figure.Figure, "suptitle", lambda self, t, **k: captions.append(t) or real(self, t, **k)
    )
    for mode in ("patch", "global"):
        fn(model, x, out, tmp_path / f"{mode}.png", denormalize=mode)
        caption = " ".join(captions[-1].split())  # wrapped to the figure width
        assert "as predicted" in caption and "nothing borrowed" in caption
