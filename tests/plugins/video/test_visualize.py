"""The video reconstruction figure, dispatched by modality."""

import matplotlib.image as mpimg
import numpy as np
import torch

import maeflow
from maeflow import registry
from maeflow.testing import zero_prediction_figure
from maeflow.visualize import visualize
from maeflow_video.data import moving_digits
from maeflow_video.visualize import video_reconstruction_figure


def test_registered_for_video_and_writes_a_frame_strip_png(tmp_path):
    assert registry("visualizer").get("video") is video_reconstruction_figure
    ds = moving_digits("test", num_frames=8, img_size=32, in_chans=1, num_samples=3)
    x = torch.stack([ds[i][0] for i in range(3)])
    model = maeflow.create_model("videomae_vit_test", in_chans=1)
    path = visualize(model, x, tmp_path / "fig" / "video.png", num_samples=2, max_frames=4, **ds.display_options)
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > img.shape[1] * 0.8  # 8 rows (4 per sample) of 4 frames


def test_reconstruction_row_is_de_normalized_predictions(tmp_path, monkeypatch):
    model = maeflow.create_model("videomae_vit_test").eval()
    x = model.tokenizer.example_inputs(1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x, generator=torch.Generator().manual_seed(1))
    shown = []
    import matplotlib.axes

    real_imshow = matplotlib.axes.Axes.imshow

    def spy(self, a, **kw):
        shown.append(a)
        return real_imshow(self, a, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "imshow", spy)
    video_reconstruction_figure(model, x, out, tmp_path / "r.png", max_frames=2, mean=[0.5] * 3, std=[0.25] * 3)
    recon = model.tokenizer.untokenize(model.reconstruct(out))[0]  # (C, T, H, W)

    def display(clip):  # the last frame, as shown
        return (clip[:, 7] * 0.25 + 0.5).clamp(0, 1).permute(1, 2, 0).numpy()

    assert len(shown) == 8  # original, masked, reconstruction, reconstruction + visible; two frames each
    assert abs(shown[5] - display(recon)).max() < 1e-5  # reconstruction of the last frame
    hidden = model.tokenizer.untokenize(out.mask.unsqueeze(-1).float().expand_as(out.tokens.targets))[0] > 0.5
    pasted = torch.where(hidden, recon, x[0])  # predictions where masked, the original where visible
    assert hidden[:, 7].any() and (~hidden[:, 7]).any()
    assert abs(shown[7] - display(pasted)).max() < 1e-5


def test_zero_prediction_is_flat_in_global_mode_and_the_caption_names_the_mode(tmp_path):
    model = maeflow.create_model("videomae_vit_test", target_norm="channel_patch_norm")  # VideoMAE's targets
    x = model.tokenizer.example_inputs(1, generator=torch.Generator().manual_seed(0))
    for mode in ("patch", "global"):
        shown, caption = zero_prediction_figure(
            model, x, video_reconstruction_figure, tmp_path / f"{mode}.png", denormalize=mode,
            max_frames=2, mean=[0.5] * 3, std=[0.25] * 3,
        )  # fmt: skip
        recon = np.stack(shown[4:6])  # rows: original, masked, reconstruction; two frames each
        assert f"denormalize={mode}" in caption and "tubelet" in caption
        if mode == "global":
            assert np.ptp(recon.reshape(-1, 3), axis=0).max() < 1e-6  # one colour: nothing predicted, nothing shown
        else:
            assert np.ptp(recon) > 0.05  # each tubelet's own colour borrowed from the original
