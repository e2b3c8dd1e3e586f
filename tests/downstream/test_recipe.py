"""``maeflow finetune`` / ``linprobe`` on a tiny ViT and the digits: outputs, exact resume, the
eval protocol's linear probe, and augmentation that comes from timm."""

import json
from pathlib import Path

import pytest
import torch

from maeflow.downstream import Downstream, downstream_config_from_dict

REPO = Path(__file__).resolve().parents[2]


def _cfg(out, **sections):
    data = {"task": "finetune", "model": {"name": "mae_vit_test"}, "head": {"drop_path": 0.1},
            "data": {"name": "digits", "batch_size": 64},
            "augment": {"rand_augment": "rand-m9-mstd0.5-inc1", "random_erasing": 0.25, "mixup": 0.8, "cutmix": 1.0},
            "train": {"epochs": 1, "max_steps": 8, "blr": 4e-3, "layer_decay": 0.75, "warmup_epochs": 0.2,
                      "label_smoothing": 0.1, "precision": "fp32", "progress": False, "log_every": 1},
            "run": {"output_dir": str(out), "seed": 3, "device": "cpu"}}  # fmt: skip
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return downstream_config_from_dict(data)


def _losses(cfg, stop_at=None):
    seen = []

    def record(recipe, rec):
        seen.append(rec["loss"])
        if stop_at is not None and rec["step"] == stop_at:
            recipe.request_stop()

    return Downstream(cfg, callbacks=[record]).fit(), seen


def test_finetune_writes_its_outputs(tmp_path):
    result, losses = _losses(_cfg(tmp_path / "run", train={"ema": 0.9, "max_steps": 3}, data={"batch_size": 32}))
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    out = tmp_path / "run"
    for name in ("classifier.pt", "classifier.safetensors", "confusion.png", "metrics.jsonl", "summary.json"):
        assert (out / name).is_file(), name
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r["type"] == "eval"]
    assert evals and {"top1", "top5", "test_loss", "ema_top1"} <= set(evals[-1])
    assert evals[-1]["num_test"] == 359 and 0 <= evals[-1]["top1"] <= evals[-1]["top5"] <= 100
    assert result.top1 == pytest.approx(evals[-1]["top1"])


def test_resume_mid_epoch_repeats_every_loss(tmp_path):
    settings = {"train": {"max_steps": 6, "ckpt_every_epochs": 0}, "data": {"batch_size": 32}}
    _, whole = _losses(_cfg(tmp_path / "whole", **settings))
    _, part1 = _losses(_cfg(tmp_path / "split", **settings), stop_at=3)
    _, part2 = _losses(_cfg(tmp_path / "split", **settings))
    assert len(whole) == 6 and part1 + part2 == whole


@pytest.mark.slow
def test_resume_repeats_every_loss(tmp_path):
    """Interrupted mid-epoch and resumed, a fine-tune takes the same per-step losses (mixup,
    cutmix, RandAugment, erasing and drop path all drawing) as one that ran through."""
    settings = {"train": {"epochs": 2, "max_steps": None, "ckpt_every_epochs": 0}, "data": {"batch_size": 128}}
    _, whole = _losses(_cfg(tmp_path / "whole", **settings))
    first, part1 = _losses(_cfg(tmp_path / "split", **settings), stop_at=7)
    assert first.interrupted == "request" and len(part1) == 7
    _, part2 = _losses(_cfg(tmp_path / "split", **settings))
    assert len(whole) == 22
    assert part1 + part2 == whole


def test_linprobe_protocol_reproduces_maeflow_eval(tmp_path):
    """``train.optimizer: protocol`` is ``maeflow eval``'s linear probe: the same top-1."""
    from maeflow.checkpoint import save_model
    from maeflow.data import build_dataset
    from maeflow.eval import evaluate_encoder
    from maeflow.factory import create_model

    torch.manual_seed(0)
    model = create_model("mae_vit_test")
    save_model(model, tmp_path / "mae.pt")
    train, test = (build_dataset("digits", split=s, model=model, augment=False) for s in ("train", "test"))
    expected = evaluate_encoder(model, train, test, linear_epochs=20, seed=5)["linear_top1"]
    cfg = downstream_config_from_dict({
        "task": "linprobe", "model": {"source": str(tmp_path / "mae.pt")},
        "data": {"name": "digits", "batch_size": 256},
        "train": {"optimizer": "protocol", "lr": 0.1, "epochs": 20, "warmup_epochs": 5},
        "run": {"output_dir": str(tmp_path / "probe"), "seed": 5, "device": "cpu"}})  # fmt: skip
    result = Downstream(cfg).fit()
    assert result.top1 == expected
    summary = json.loads((tmp_path / "probe" / "summary.json").read_text())
    assert summary["top1"] == pytest.approx(expected, abs=0.6)  # the written classifier scores the same (± a tie)


def test_linprobe_lars_trains_only_the_head(tmp_path):
    cfg = _cfg(tmp_path / "lp", augment={"rand_augment": None, "random_erasing": 0.0, "mixup": 0.0, "cutmix": 0.0},
               train={"max_steps": 4})  # fmt: skip
    cfg = downstream_config_from_dict({**cfg.to_dict(), "task": "linprobe", "head": {}, "train": {
        "epochs": 1, "max_steps": 4, "progress": False, "precision": "fp32"}})  # fmt: skip
    recipe = Downstream(cfg)
    recipe.fit()
    from timm.optim import Lars

    assert isinstance(recipe.optimizer, Lars)
    assert {n for n, p in recipe.raw.named_parameters() if p.requires_grad} == {"head.weight", "head.bias"}
    assert recipe.raw.head_norm.__class__.__name__ == "BatchNorm1d" and not recipe.raw.head_norm.affine


def test_augmentations_are_timms_and_torchaudios():
    from maeflow.downstream.augment import ClipErasing, ImageRandAugment, SpecAugment, batch_mixer
    from maeflow.downstream.config import AugmentConfig

    mixer = batch_mixer(AugmentConfig(mixup=0.8, cutmix=1.0), 10, 0.1)
    assert type(mixer).__module__.startswith("timm.data")
    assert type(ImageRandAugment("rand-m9-mstd0.5-inc1", [0.5], [0.2], 32).op).__module__.startswith("timm.data")
    assert type(ClipErasing(0.25).op).__module__.startswith("timm.data")
    assert type(SpecAugment(4, 8).freq).__module__.startswith("torchaudio")
    # no local copies of them anywhere in maeflow or its plugins
    for path in [*REPO.glob("maeflow/**/*.py"), *REPO.glob("plugins/**/*.py")]:
        text = path.read_text()
        for name in ("def mixup", "def cutmix", "def rand_bbox", "class Mixup", "class RandAugment",
                     "class RandomErasing", "def rand_augment", "class LARS", "class Lars"):  # fmt: skip
            assert name not in text, f"{name} in {path}"


def test_clip_augmentation_replays_ops_on_every_frame():
    from maeflow.downstream.augment import ImageRandAugment
    from maeflow.downstream.augment import seeded as seeded_rng

    clip = torch.rand(3, 1, 32, 32).expand(3, 4, 32, 32).contiguous()  # four identical frames
    with seeded_rng(1):
        out = ImageRandAugment("rand-m9-mstd0.5-inc1", [0.5] * 3, [0.25] * 3, 32)(clip)
    assert out.shape == clip.shape
    for t in range(1, 4):
        torch.testing.assert_close(out[:, t], out[:, 0])


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["ddp", "fsdp"])
def test_two_processes_match_one(tmp_path, monkeypatch, engine):
    """DDP / FSDP2 through the runtime's Strategy: 2 gloo processes × 16 samples take the same
    per-step losses and held-out top-1 as one process with batch 32 (per-sample augmentation;
    mixup pairs and drop path depend on the batch layout, so they are off here)."""
    import socket

    import torch.multiprocessing as mp

    from tests.downstream.helpers import ddp_finetune_worker

    monkeypatch.syspath_prepend(str(REPO))
    plain = {"augment": {"mixup": 0.0, "cutmix": 0.0}, "head": {"drop_path": 0.0},
             "train": {"max_steps": 4, "distributed": engine}, "data": {"batch_size": 32}}  # fmt: skip
    single, reference = _losses(_cfg(tmp_path / "one", **plain))
    cfg = _cfg(tmp_path / "two", **plain).to_dict()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "losses.json"
    mp.spawn(ddp_finetune_worker, args=(2, port, cfg, str(out)), nprocs=2, join=True)
    got = json.loads(out.read_text())
    torch.testing.assert_close(torch.tensor(got["losses"]), torch.tensor(reference), rtol=0, atol=1e-5)
    assert got["top1"] == pytest.approx(single.top1, abs=0.3)
