"""Tiny datasets and config sections shared by the trainer tests."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

import maeflow
from maeflow.config import DataConfig, EvalConfig, RunConfig, TrainConfig
from maeflow.train import Trainer


class NoisyImages(Dataset):
    """``n`` fixed 3×32×32 images; each read adds fresh noise from the global torch RNG, like a
    random augmentation would (so the tests see whether the trainer seeds item randomness)."""

    def __init__(self, n: int = 32, nan_at: int | None = None):
        g = torch.Generator().manual_seed(123)
        self.images = torch.randn(n, 3, 32, 32, generator=g)
        self.nan_at = nan_at
        self.num_classes = 2

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = self.images[i] + 0.1 * torch.randn(3, 32, 32)
        if i == self.nan_at:
            x = torch.full_like(x, float("nan"))
        return x, i % 2


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    return maeflow.create_model("mae_vit_test")


_EVAL_KEYS = {"eval_every_epochs": "every_epochs", "eval_final": "final"}


def settings(tmp_path, **kw) -> dict:
    """The config sections ``train``, ``data``, ``run``, ``eval`` of a small test run; flat
    keyword overrides go to the section that has the key (``eval_every_epochs`` → ``eval.every_epochs``)."""
    base = dict(epochs=2, batch_size=8, base_lr=1e-2, warmup_epochs=0.5, output_dir=str(tmp_path),
                resume="never", progress=False, tensorboard=False, reconstruction=False, log_every=1,
                num_workers=0)  # fmt: skip
    base.update(kw)
    parts: dict[str, dict] = {"train": {}, "data": {"name": "noisy_images"}, "run": {}, "eval": {}}
    sections = {"train": TrainConfig, "data": DataConfig, "run": RunConfig}
    for key, value in base.items():
        if key in _EVAL_KEYS:
            parts["eval"][_EVAL_KEYS[key]] = value
            continue
        where = [name for name, model in sections.items() if key in model.model_fields]
        if not where:
            raise KeyError(f"no config section has {key!r}")
        parts[where[0]][key] = value
    return {"train": TrainConfig(**parts["train"]), "data": DataConfig(**parts["data"]),
            "run": RunConfig(**parts["run"]), "eval": EvalConfig(**parts["eval"])}  # fmt: skip


def run(model, dataset, s: dict, stop_at: int | None = None, signal_at: int | None = None):
    """Fit and return ``(result, per-step losses)``; optionally stop (or send SIGTERM) after a step."""
    import os
    import signal

    losses: list[float] = []

    def cb(trainer, record):
        losses.append(record["loss"])
        if stop_at is not None and record["step"] == stop_at:
            trainer.request_stop()
        if signal_at is not None and record["step"] == signal_at:
            os.kill(os.getpid(), signal.SIGTERM)

    result = Trainer(model, dataset, **s, callbacks=[cb]).fit()
    return result, losses


def ddp_worker(rank: int, world: int, port: int, out_dir: str, overrides: dict) -> None:
    """One process of a gloo process group, as torchrun would start it; rank 0 saves its losses."""
    import json
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    try:
        s = settings(out_dir, device="cpu", **overrides)
        result, losses = run(tiny_model(), NoisyImages(16), s)
        if rank == 0:
            with open(os.path.join(out_dir, "losses.json"), "w") as f:
                json.dump({"losses": losses, "step": result.global_step}, f)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
