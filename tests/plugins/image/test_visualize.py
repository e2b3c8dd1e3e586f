"""Reconstruction figure and its CLI."""

import numpy as np
import torch

import maeflow
from maeflow.cli import main
from maeflow.testing import zero_prediction_figure
from maeflow.visualize import visualize


def test_figure_is_written(tmp_path):
    model = maeflow.create_model("mae_vit_test")
    path = visualize(model, None, tmp_path / "r.png", num_samples=2)
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_visualizer_marks_untrained_decoder(tmp_path, monkeypatch):
    import maeflow_image.visualize as viz

    texts = []
    real = viz.image_reconstruction_figure

    def spy(*args, **kwargs):
        import matplotlib.axes

        orig = matplotlib.axes.Axes.text

        def record(self, *a, **k):
            texts.append(a[2])
            return orig(self, *a, **k)

        monkeypatch.setattr(matplotlib.axes.Axes, "text", record)
        return real(*args, **kwargs)

    model = maeflow.create_model("mae_vit_test")
    x = model.tokenizer.example_inputs(2)
    out = model(x)
    spy(model, x, out, str(tmp_path / "a.png"), decoder_trained=False)
    assert any("decoder untrained" in t for t in texts)


def test_visualize_cli_with_encoder_only_checkpoint(tmp_path, capsys, caplog):
    model = maeflow.create_model("mae_vit_test")
    full = maeflow.export_state_dict(model, "mae")
    sd = {k: v for k, v in full.items() if not k.startswith(("decoder", "mask_token"))}
    torch.save({"model": sd}, tmp_path / "enc.pth")
    out = tmp_path / "fig.png"
    with caplog.at_level("WARNING"):
        rc = main(["visualize", str(tmp_path / "enc.pth"), "--model", "mae_vit_test", "-o", str(out), "-n", "2"])
    assert rc == 0 and out.exists()
    assert "decoder has no trained weights" in caplog.text


def test_visualize_cli_with_maeflow_checkpoint(tmp_path):
    model = maeflow.create_model("mae_vit_test")
    maeflow.save_model(model, tmp_path / "m.pt")
    assert main(["visualize", str(tmp_path / "m.pt"), "-o", str(tmp_path / "m.png"), "-n", "1"]) == 0
    assert (tmp_path / "m.png").exists()


def test_visualize_cli_denormalize_flag_reaches_the_caption(tmp_path, monkeypatch):
    import matplotlib.figure

    maeflow.save_model(maeflow.create_model("mae_vit_test"), tmp_path / "m.pt")  # a full checkpoint
    captions = []
    real = matplotlib.figure.Figure.suptitle

    def suptitle(self, t, **k):
        captions.append(" ".join(t.split()))
        return real(self, t, **k)

    monkeypatch.setattr(matplotlib.figure.Figure, "suptitle", suptitle)
    for mode in ("global", "patch"):
        assert main(["visualize", str(tmp_path / "m.pt"), "-o", str(tmp_path / f"{mode}.png"), "-n", "1",
                     "--denormalize", mode]) == 0  # fmt: skip
        assert f"(denormalize={mode})" in captions[-1]


def test_visualize_cli_draws_dataset_samples_sized_for_the_model(tmp_path):
    # the digits dataset's img_size/in_chans default to the model's (16x16, one channel here)
    model = maeflow.create_model("mae_vit_test", img_size=16, in_chans=1, patch_size=4)
    maeflow.save_model(model, tmp_path / "m.pt")
    out = tmp_path / "d.png"
    assert main(["visualize", str(tmp_path / "m.pt"), "-o", str(out), "-n", "2", "--dataset", "digits"]) == 0
    assert out.exists()
    # split=NAME among the dataset options picks the split (it used to collide with the default)
    train = tmp_path / "train.png"
    args = ["visualize", str(tmp_path / "m.pt"), "-o", str(train), "-n", "2", "--dataset", "digits"]
    assert main([*args, "--data-set", "split=train"]) == 0
    assert train.exists()


def test_zero_prediction_is_flat_in_global_mode_and_the_caption_names_the_mode(tmp_path):
    from maeflow_image.visualize import image_reconstruction_figure

    model = maeflow.create_model("mae_vit_test")
    x = model.tokenizer.example_inputs(1, generator=torch.Generator().manual_seed(0))
    for mode in ("patch", "global"):
        shown, caption = zero_prediction_figure(
            model, x, image_reconstruction_figure, tmp_path / f"{mode}.png", denormalize=mode,
            mean=[0.5] * 3, std=[0.25] * 3,
        )  # fmt: skip
        recon = shown[2]  # original | masked | reconstruction | reconstruction + visible
        assert f"denormalize={mode}" in caption
        if mode == "global":
            assert np.ptp(recon) < 1e-6  # nothing predicted, nothing shown
        else:
            assert np.ptp(recon) > 0.05  # each patch's own mean borrowed from the original: blocks
