"""The shipped point-cloud configs: Point-MAE's published recipe, and a demo whose data fits its model."""

from pathlib import Path

import numpy as np
import torch

import maeflow
from maeflow.config import check_registered, load_config
from maeflow.data import build_dataset

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "pointcloud"


def test_shapenet55_recipe_follows_the_paper(tmp_path):
    cfg = load_config(CONFIGS / "pointmae_shapenet55.yaml", env={"SHAPENET55_ROOT": str(tmp_path)})
    check_registered(cfg)
    t = cfg.train
    assert (t.epochs, t.lr, t.weight_decay, t.warmup_epochs, t.precision) == (300, 1e-3, 0.05, 10, "fp32")
    assert cfg.data.batch_size == 128 and cfg.model.name == "pointmae_base"
    assert cfg.data.options["root"] == f"{tmp_path}/shapenet_pc"
    # the data layout it expects reads, with the model's point count
    (tmp_path / "shapenet_pc").mkdir()
    np.save(tmp_path / "shapenet_pc" / "02691156-x.npy", np.random.default_rng(0).random((8192, 3)))
    (tmp_path / "ShapeNet-55").mkdir()
    (tmp_path / "ShapeNet-55" / "train.txt").write_text("02691156-x.npy\n")
    model = maeflow.create_model(cfg.model.name, **cfg.model.args)
    ds = build_dataset(cfg.data.name, "train", model=model, **dict(cfg.data.options, augment=False))
    x = ds[0][0]
    assert x.shape == (1024, 3)
    assert abs(x.norm(dim=1).max().item() - 1) < 1e-5 and x.mean(0).abs().max() < 0.05  # on the unit sphere


def test_demo_data_fits_its_model():
    cfg = load_config(CONFIGS / "demo.yaml")
    check_registered(cfg)
    assert cfg.eval.compare_random_init and cfg.data.name == "synthetic_shapes"
    model = maeflow.create_model(cfg.model.name, **cfg.model.args)
    ds = build_dataset(cfg.data.name, "train", model=model, **dict(cfg.data.options, size=4))
    x = torch.stack([ds[i][0] for i in range(4)])
    assert x.shape == (4, 256, 3)
    with torch.no_grad():
        out = model(x)
    assert out.mask_info.num_visible == 16 - int(0.6 * 16)
