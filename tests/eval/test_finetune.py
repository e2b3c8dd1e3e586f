"""End-to-end fine-tuning: finetune_encoder, its config keys and ProbeEvaluator."""

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

import maeflow
from maeflow import plugins
from maeflow.eval import evaluate_encoder, finetune_encoder
from maeflow.eval.finetune import MAE_HEAD_INIT_STD, _Classifier
from maeflow.nn.blocks import DropPath
from maeflow.runtime import param_groups


class Prototypes(Dataset):
    """``n`` 3×16×16 images: class c (of 4) is a fixed random pattern plus noise (``seed``
    draws the noise; the patterns are shared by every split). ``augment`` adds fresh noise from
    the global torch RNG on every read (like a random augmentation); ``label`` overrides every
    label."""

    num_classes = 4

    def __init__(self, n=64, seed=0, augment=False, label=None):
        patterns = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1234))
        classes = torch.arange(n) % 4
        self.labels = classes if label is None else torch.full((n,), label)
        noise = torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))
        self.images = patterns[classes] + 1.5 * noise
        self.augment = augment

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i]
        if self.augment:
            x = x + 0.1 * torch.randn_like(x)
        return x, int(self.labels[i])


def tiny(seed=0):
    torch.manual_seed(seed)
    return maeflow.create_model("mae_vit_test", img_size=16)


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_finetune_learns_and_leaves_the_model_alone():
    model = tiny()
    model.train()
    before = state(model)
    train, test = Prototypes(64, augment=True), Prototypes(32, seed=1)
    result = finetune_encoder(model, train, test, epochs=8, batch_size=16, lr=3e-3, progress=False, return_model=True,
                              head_init_std=MAE_HEAD_INIT_STD)  # fmt: skip
    assert model.training and not result["model"].training  # the caller's mode kept; the copy comes back in eval
    # the head as initialized (trunc normal 2e-5) on the starting features: about chance (25%)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        head = nn.Linear(32, 4)
        nn.init.trunc_normal_(head.weight, std=2e-5)
        nn.init.zeros_(head.bias)
        x = torch.stack([test[i][0] for i in range(len(test))])
        untrained = 100.0 * (head(model.eval().forward_features(x)).argmax(1) == test.labels).float().mean().item()
    assert untrained <= 50 and result["finetune_top1"] >= 90
    # a linear probe on the frozen features does much worse: the encoder's updates matter
    assert evaluate_encoder(model, Prototypes(64), test, knn_k=5, linear_epochs=50)["linear_top1"] <= 80
    assert result["finetune_train_loss"] < 1.0  # ln 4 = 1.39 at the start
    assert (result["num_train"], result["num_test"], result["num_classes"], result["feature_dim"]) == (64, 32, 4, 32)
    assert (result["epochs"], result["steps"]) == (8, 32)
    tuned = result["model"]
    after = tuned.state_dict()
    for name, value in before.items():
        assert torch.equal(model.state_dict()[name], value), f"the caller's {name} changed"
        if name.startswith("decoder."):
            assert torch.equal(after[name], value), f"{name} was updated"
    for name in ("tokenizer.proj.weight", "encoder.cls_token", "encoder.blocks.0.attn.qkv.weight",
                 "encoder.norm.weight"):  # fmt: skip
        assert not torch.equal(after[name], before[name]), f"{name} was not fine-tuned"
    assert result["head"].weight.abs().max() > 1e-2  # far from its 2e-5 start
    assert all(p.requires_grad for p in tuned.parameters())  # the frozen decoder is thawed on return


def test_finetune_is_deterministic_and_keeps_the_global_rng():
    model = tiny()
    for block in model.encoder.blocks:
        block.drop_path = DropPath(0.3)  # stochastic depth draws from the (seeded) global generator
    train, test = Prototypes(48, augment=True), Prototypes(16, seed=1)
    rng = torch.get_rng_state()
    kw = dict(epochs=2, batch_size=16, progress=False)
    a, b = finetune_encoder(model, train, test, **kw), finetune_encoder(model, train, test, **kw)
    assert torch.equal(torch.get_rng_state(), rng)
    for key in ("finetune_top1", "finetune_train_loss", "finetune_train_top1"):
        assert a[key] == b[key], key
    c = finetune_encoder(model, train, test, seed=1, **kw)
    assert c["finetune_train_loss"] != a["finetune_train_loss"]


def test_only_the_feature_path_is_optimized(monkeypatch):
    seen = []
    real = torch.optim.AdamW

    def spy(groups, **kw):
        seen.append(groups)
        return real(groups, **kw)

    monkeypatch.setattr(torch.optim, "AdamW", spy)
    model = tiny()
    result = finetune_encoder(model, Prototypes(16), Prototypes(8), epochs=1, batch_size=8, layer_decay=0.5,
                              progress=False, return_model=True)  # fmt: skip
    tuned, head = result["model"], result["head"]
    (groups,) = seen
    in_optimizer = {id(p) for g in groups for p in g["params"]}
    for name, p in tuned.named_parameters():
        assert (id(p) in in_optimizer) == (not name.startswith("decoder.")), name
    assert {id(p) for p in head.parameters()} <= in_optimizer
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    for p in (tuned.encoder.cls_token, tuned.encoder.norm.weight, tuned.encoder.blocks[0].attn.qkv.bias, head.bias):
        assert id(p) in no_decay
    assert id(head.weight) not in no_decay and id(tuned.encoder.blocks[1].mlp.fc1.weight) not in no_decay
    # layer-wise lr decay 0.5 over 2 blocks: tokenizer 1/8, block 0 1/4, block 1 1/2, norm and head 1
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    assert scale[id(tuned.tokenizer.proj.weight)] == scale[id(tuned.encoder.cls_token)] == 0.125
    assert scale[id(tuned.encoder.blocks[0].attn.qkv.weight)] == 0.25
    assert scale[id(tuned.encoder.blocks[1].attn.qkv.weight)] == 0.5
    assert scale[id(tuned.encoder.norm.weight)] == scale[id(head.weight)] == 1.0
    assert len(param_groups(_Classifier(tiny(), nn.Linear(32, 4), "auto"), 0.05)) == 2  # decay / no decay


def test_finetune_errors():
    model = tiny()
    train, test = Prototypes(8), Prototypes(8)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        finetune_encoder(model, train, test, epochs=0)
    with pytest.raises(ValueError, match="unlabeled"):
        finetune_encoder(model, Prototypes(8, label=-1), test, epochs=1, progress=False)
    undeclared = Prototypes(8, label=-1)
    undeclared.num_classes = None  # found by reading the labels
    with pytest.raises(ValueError, match="unlabeled"):
        finetune_encoder(model, undeclared, test, epochs=1, progress=False)
    with pytest.raises(ValueError, match="training and test samples"):
        finetune_encoder(model, Prototypes(0), test, epochs=1)
    with pytest.raises(ValueError, match="layer_decay"):
        finetune_encoder(model, train, test, epochs=1, layer_decay=1.5)
    with pytest.raises(ValueError, match="head_init_std"):
        finetune_encoder(model, train, test, epochs=1, head_init_std=0.0)


def test_finetune_head_init():
    model, train, test = tiny(), Prototypes(16), Prototypes(8, seed=1)
    kw = dict(epochs=1, batch_size=8, lr=1e-12, warmup_epochs=0, progress=False, return_model=True)
    near_zero = finetune_encoder(model, train, test, head_init_std=MAE_HEAD_INIT_STD, **kw)["head"]
    default = finetune_encoder(model, train, test, **kw)["head"]
    assert near_zero.weight.abs().max() < 1e-4 and near_zero.bias.abs().max() < 1e-9  # trunc normal 2e-5, bias 0
    bound = 1 / 32**0.5  # nn.Linear's default: uniform(±1/sqrt(fan_in)) for weights and bias
    assert 0.5 * bound < default.weight.abs().max() <= bound and default.bias.abs().max() > 0


def test_finetune_config_keys():
    from maeflow.config import config_from_dict

    base = {"model": {"name": "mae_vit_test"}, "data": {"name": "digits"}}
    cfg = config_from_dict(base)
    assert (cfg.eval.finetune_epochs, cfg.eval.finetune_lr, cfg.eval.finetune_batch_size) == (0, 1e-3, 64)
    cfg = config_from_dict(base, {"eval.final": True, "eval.finetune_epochs": 3, "eval.finetune_lr": 5e-4})
    assert (cfg.eval.finetune_epochs, cfg.eval.finetune_lr) == (3, 5e-4)
    with pytest.raises(ValueError, match="eval.finetune_epochs"):
        config_from_dict(base, {"eval.final": True, "eval.finetune_epochs": -1})
    with pytest.raises(ValueError, match="eval.finetune_lr"):
        config_from_dict(base, {"eval.final": True, "eval.finetune_lr": 0})
    with pytest.raises(ValueError, match="set eval.final=true"):
        config_from_dict(base, {"eval.finetune_epochs": 2})  # periodic evaluations never fine-tune


class PrototypesPlugin:
    @staticmethod
    def prototypes(split="train", augment=None, seed=0):
        augment = split == "train" if augment is None else augment
        return Prototypes(48 if split == "train" else 16, seed=seed + (split != "train"), augment=augment)

    @maeflow.hookimpl
    def maeflow_register(self, registry):
        registry.dataset("prototypes", self.prototypes)


@pytest.fixture
def prototypes_registry():
    plugins.setup(plugins={"prototypes": PrototypesPlugin()})
    yield
    plugins.reset()


def test_probe_evaluator_finetunes_at_the_final_evaluation(prototypes_registry, monkeypatch):
    from maeflow.config import config_from_dict
    from maeflow.train import ProbeEvaluator, build_model

    cfg = config_from_dict(
        {"model": {"name": "mae_vit_test", "args": {"img_size": 16}}, "data": {"name": "prototypes"}},
        {"eval.final": True, "eval.finetune_epochs": 2, "eval.finetune_batch_size": 16,
         "eval.compare_random_init": True, "eval.linear_epochs": 2, "eval.knn_k": 5, "train.progress": False},
    )  # fmt: skip
    model = build_model(cfg)
    evaluator = ProbeEvaluator(cfg, model)
    periodic = evaluator(model, final=False)
    assert "finetune_top1" not in periodic and "random_finetune_top1" not in periodic
    import maeflow.eval

    calls = []
    real = maeflow.eval.finetune_encoder

    def counting(m, train, test, **kw):
        calls.append((train.augment, test.augment, kw["epochs"], kw["batch_size"]))
        return real(m, train, test, **kw)

    monkeypatch.setattr(maeflow.eval, "finetune_encoder", counting)
    out = evaluator(model)
    assert {"knn_top1", "linear_top1", "finetune_top1", "random_knn_top1", "random_finetune_top1"} <= set(out)
    assert 0 <= out["finetune_top1"] <= 100 and 0 <= out["random_finetune_top1"] <= 100
    assert calls == [(True, False, 2, 16)] * 2  # augmented train split, plain test split; pretrained + twin
    assert evaluator.datasets()[0].augment is False  # the probes' train split stays un-augmented
    again = evaluator(model)
    assert again["random_finetune_top1"] == out["random_finetune_top1"] and len(calls) == 3  # the twin: once
