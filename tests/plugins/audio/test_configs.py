"""The shipped audio configs: the published recipe's numbers, and a demo whose data fits its model."""

from pathlib import Path

import torch

import maeflow
from maeflow.config import check_registered, load_config
from maeflow.data import build_dataset

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "audio"


def test_audioset_recipe_follows_the_paper():
    cfg = load_config(CONFIGS / "audiomae_vit_base_audioset2m.yaml", env={"AUDIOSET_ROOT": "/data/audioset"})
    check_registered(cfg)
    t = cfg.train
    assert (t.epochs, t.effective_batch_size, t.base_lr, t.weight_decay) == (33, 512, 2e-4, 1e-4)
    assert tuple(t.betas) == (0.9, 0.95)
    assert cfg.model.name == "audiomae_vit_base_patch16" and cfg.model.args["mask_ratio"] == 0.8
    assert cfg.data.name == "audio_folder" and cfg.data.options["root"] == "/data/audioset"


def test_demo_data_fits_its_model():
    cfg = load_config(CONFIGS / "demo.yaml")
    check_registered(cfg)
    model = maeflow.create_model(cfg.model.name, **cfg.model.args)
    options = dict(cfg.data.options, train_size=4, test_size=4)
    ds = build_dataset(cfg.data.name, "train", model=model, **options)
    x = torch.stack([ds[i][0] for i in range(2)])
    assert x.shape == (2, 1, 64, 32)
    with torch.no_grad():
        out = model(x)
    assert out.mask_info.num_visible == 6  # int(32 · 0.2)
