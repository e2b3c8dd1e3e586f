"""The static-clip control of issue 13: a video MAE on clips that repeat one real photo must
learn as much as an image MAE on the same photos with the same widths, with the target
normalizer the small video preset uses by default.

Runs ``benchmarks/video_target_control.py`` (scikit-learn's two sample photos, random 32² RGB
crops, 8 repeated frames). The fast variant uses the test presets' own widths and few steps;
the slow one is the issue's setting (96 wide × 4 blocks, 400 steps) and also records why the
small presets do not use VideoMAE's per-channel targets.
"""

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "video_target_control.py"


@pytest.fixture(scope="module")
def control():
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("video_target_control", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _rows(control, steps, batch, widths, norms, eval_size):
    photos = control.photos()
    held_out = control.crops(photos, eval_size, torch.Generator().manual_seed(999))
    return {
        (kind, norm): control.train(kind, norm, steps, photos, held_out, batch=batch, widths=widths)
        for kind, norm in norms
    }


def test_video_learns_like_image_on_static_clips_fast(control, one_thread):
    widths = dict(control.WIDTHS, embed_dim=32, depth=2, num_heads=2)  # the test presets' own
    rows = _rows(control, 60, 32, widths, [("image", "patch_norm"), ("video", "default")], 128)
    image, video = rows["image", "patch_norm"], rows["video", "default"]
    assert video["target_norm"] == "PatchNormalizer"  # what videomae_vit_test uses by default
    assert video["eval_loss"] < 0.8 * video["predict_zero"]  # it learns, well below the trivial baseline
    assert video["eval_loss"] <= 1.1 * image["eval_loss"]  # within 10 % of image MAE on the same frames


@pytest.mark.slow
def test_static_clip_control_in_the_issues_setting(control, one_thread):
    norms = [("image", "patch_norm"), ("video", "default"), ("image", "channel_patch_norm"),
             ("video", "channel_patch_norm")]  # fmt: skip
    rows = _rows(control, 400, 64, control.WIDTHS, norms, 512)
    image, video = rows["image", "patch_norm"], rows["video", "default"]
    assert video["eval_loss"] <= 1.1 * image["eval_loss"]
    assert video["eval_loss"] < 0.6 * video["predict_zero"]
    # why not VideoMAE's per-channel target at this scale: image and video MAE alike stay near
    # predicting zero, while most of the patch_norm target is colour offsets they learn
    for kind in ("image", "video"):
        ch = rows[kind, "channel_patch_norm"]
        assert ch["eval_loss"] > 0.9 * ch["predict_zero"]
    assert image["colour_share"] > 0.5 and image["offset_residual_ratio"] < 0.3
