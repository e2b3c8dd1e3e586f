"""The shipped video configs: the published VideoMAE recipe's numbers, and a demo whose data fits its model."""

import json
from pathlib import Path

import pytest
import torch

import maeflow
from maeflow.config import check_registered, load_config
from maeflow.data import build_dataset

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "video"


def test_kinetics_recipe_follows_the_paper():
    cfg = load_config(CONFIGS / "videomae_vit_base_kinetics400.yaml", env={"KINETICS_ROOT": "/data/k400"})
    check_registered(cfg)
    t = cfg.train
    assert (t.epochs, t.effective_batch_size, t.base_lr, t.min_lr) == (800, 2048, 1.5e-4, 8e-5)
    assert (t.weight_decay, t.warmup_epochs) == (0.05, 40)
    assert tuple(t.betas) == (0.9, 0.95)
    args = cfg.model.args
    assert cfg.model.name == "videomae_vit_base_patch16"
    assert (args["mask_ratio"], args["masker"], args["num_frames"], args["img_size"]) == (0.9, "tube", 16, 224)
    assert cfg.data.name == "video_folder" and cfg.data.options["root"] == "/data/k400"
    assert cfg.data.options["stride"] == 4


def test_demo_data_fits_its_model():
    cfg = load_config(CONFIGS / "demo.yaml")
    check_registered(cfg)
    assert cfg.eval.compare_random_init and cfg.data.name == "moving_digits"
    assert cfg.eval.final and cfg.eval.finetune_epochs > 0  # the demo's comparison is the fine-tuning one
    model = maeflow.create_model(cfg.model.name, **cfg.model.args)
    ds = build_dataset(cfg.data.name, "train", model=model, **dict(cfg.data.options, num_samples=2))
    x = torch.stack([ds[i][0] for i in range(2)])
    assert x.shape == (2, 1, 8, 32, 32)
    with torch.no_grad():
        out = model(x)
    assert out.mask_info.num_visible == 4 * (16 - int(0.75 * 16))  # tube: 4 of 16 patches in each of 4 slots


@pytest.mark.slow
def test_demo_pretraining_beats_random_init_when_fine_tuned(tmp_path):
    """The demo end to end (about 3 minutes on 2 cores): its final evaluation fine-tunes the
    pretrained encoder and a random twin on the same labeled clips; pretraining must win
    clearly (measured 76.4 vs 33.8 at run.seed 0)."""
    from maeflow.train import build_trainer

    cfg = load_config(CONFIGS / "demo.yaml", [f"run.output_dir={tmp_path}", "train.reconstruction=false"])
    build_trainer(cfg).fit()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in records if "finetune_top1" in r][-1]
    assert final["finetune_top1"] >= final["random_finetune_top1"] + 15
