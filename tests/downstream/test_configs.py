"""The shipped downstream configs validate, and the ImageNet ones carry the MAE paper's recipe."""

from pathlib import Path

import pytest
import torch

import maeflow
from maeflow.downstream import DownstreamConfig, load_downstream_config
from maeflow.downstream.classifier import Classifier
from maeflow.runtime import build_optimizer

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ENV = {name: "/data" for name in ("IMAGENET_ROOT", "KINETICS_ROOT", "ESC50_ROOT", "SCANOBJECTNN_ROOT")}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*/finetune_*.yaml")) + sorted(CONFIGS.glob("*/linprobe_*.yaml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")  # fmt: skip
def test_every_downstream_config_validates(path):
    from maeflow.plugins import registry

    cfg = load_downstream_config(path, env=ENV)
    assert path.read_text().startswith("# ")  # each config starts with the command that runs it
    assert cfg.task in path.name
    registry("dataset").get(cfg.data.name)
    if cfg.model.name:
        registry("model").get(cfg.model.name)


def test_imagenet_finetune_recipe_is_the_papers():
    base = load_downstream_config(CONFIGS / "image/finetune_mae_vit_base_imagenet.yaml", env=ENV)
    h, t, a = base.head, base.train, base.augment
    assert (h.pool, h.norm, h.drop_path) == ("avg", "fc_norm", 0.1)
    assert (t.optimizer, tuple(t.betas), t.weight_decay, t.blr, t.layer_decay) == ("adamw", (0.9, 0.999), 0.05,
                                                                                      5e-4, 0.65)  # fmt: skip
    assert (t.warmup_epochs, t.label_smoothing, t.lr) == (5, 0.1, None)  # lr = blr × batch / 256
    assert (a.rand_augment, a.mixup, a.cutmix, a.random_erasing) == ("rand-m9-mstd0.5-inc1", 0.8, 1.0, 0.25)
    large = load_downstream_config(CONFIGS / "image/finetune_mae_vit_large_imagenet.yaml", env=ENV)
    assert large.train.layer_decay == 0.75


def test_imagenet_linprobe_recipe_is_the_papers():
    cfg = load_downstream_config(CONFIGS / "image/linprobe_mae_vit_base_imagenet.yaml", env=ENV)
    assert (cfg.head.pool, cfg.head.norm) == ("cls", "batchnorm")
    assert (cfg.train.optimizer, cfg.train.blr, cfg.train.weight_decay) == ("lars", 0.1, 0.0)
    assert (cfg.train.epochs, cfg.train.warmup_epochs) == (90, 10)


def test_linprobe_defaults_to_lars_and_batchnorm():
    cfg = DownstreamConfig.model_validate({"task": "linprobe", "model": {"name": "mae_vit_test"},
                                           "data": {"name": "digits"}})  # fmt: skip
    assert (cfg.head.pool, cfg.head.norm, cfg.train.optimizer, cfg.train.blr, cfg.train.weight_decay) == (
        "cls", "batchnorm", "lars", 0.1, 0.0)  # fmt: skip
    tuned = DownstreamConfig.model_validate({"task": "finetune", "model": {"name": "mae_vit_test"},
                                             "data": {"name": "digits"}})  # fmt: skip
    assert (tuned.train.optimizer, tuned.head.norm) == ("adamw", "fc_norm")


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match="layer_decya"):
        load_downstream_config(CONFIGS / "image/finetune_demo.yaml", ["train.layer_decya=0.7"])


@pytest.mark.parametrize(("depth", "decay"), [(12, 0.65), (24, 0.75)])
def test_layer_decay_gives_the_published_per_block_ratios(depth, decay):
    """BEiT/MAE: block i's lr is decay^(depth - i) of the head's; patch embedding and cls token decay^(depth+1)."""
    backbone = maeflow.create_model("mae_vit_test", depth=depth)
    clf = Classifier(backbone, num_classes=10)
    opt = build_optimizer(clf, 1e-3, 0.05, (0.9, 0.999), layer_decay=decay)
    scale = {id(p): g["lr_scale"] for g in opt.param_groups for p in g["params"]}
    named = dict(clf.named_parameters())
    for i in range(depth):
        assert scale[id(named[f"encoder.blocks.{i}.attn.qkv.weight"])] == pytest.approx(decay ** (depth - i))
    assert scale[id(named["tokenizer.proj.weight"])] == pytest.approx(decay ** (depth + 1))
    assert scale[id(named["encoder.cls_token"])] == pytest.approx(decay ** (depth + 1))
    for name in ("head.weight", "head.bias", "head_norm.weight"):
        assert scale[id(named[name])] == 1.0
    fc1 = [scale[id(named[f"encoder.blocks.{i}.mlp.fc1.weight"])] for i in range(depth)]
    ratios = [b / a for a, b in zip(fc1, fc1[1:], strict=False)]
    torch.testing.assert_close(torch.tensor(ratios), torch.full((depth - 1,), 1 / decay, dtype=torch.float32))
