"""The fine-tuning / linear-probing recipe on the runtime (:mod:`maeflow.runtime`).

    result = Downstream(load_downstream_config("configs/image/finetune_demo.yaml")).fit()
    result.top1, result.output_dir / "metrics.jsonl"

Reading order: ``_setup`` composes the runtime (device, :class:`~maeflow.runtime.Strategy`,
:class:`~maeflow.runtime.Precision`, optimizer, :class:`~maeflow.runtime.WarmupCosine`, the
seeded resumable loader), ``fit`` runs epochs and evaluates after each, ``_step`` is one
optimizer step. Item augmentation is seeded per sample by the loader, mixup, stochastic depth
and dropout by the step's seed, so an interrupted and resumed run repeats every loss.
``train.optimizer: protocol`` is ``maeflow eval``'s linear probe instead (:mod:`.protocol`).
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from maeflow.downstream.augment import AugmentedItems, batch_mixer, item_augmentation, seeded
from maeflow.downstream.classifier import Classifier, classifier_payload, load_encoder
from maeflow.downstream.config import DownstreamConfig
from maeflow.downstream.data import PaddedShard, build_splits, count_classes
from maeflow.downstream.report import confusion_figure, labels_of, save_classifier, topk_hits
from maeflow.runtime import Precision, Strategy, WarmupCosine, build_optimizer, resolve_device, seed_everything
from maeflow.runtime import state as ckpt
from maeflow.runtime.device import set_threads

log = logging.getLogger(__name__)


@dataclass
class DownstreamResult:
    output_dir: Path
    global_step: int
    epoch: int
    top1: float | None = None
    top5: float | None = None
    best_top1: float | None = None
    ema_top1: float | None = None
    interrupted: str | None = None
    files: dict[str, Path] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


class Downstream:
    """One fine-tuning or linear-probing run of a :class:`DownstreamConfig`.

    :param callbacks: ``fn(recipe, record)`` after every optimizer step (``step``, ``epoch``,
        ``loss``, ``lr``), on every rank.
    """

    def __init__(self, cfg: DownstreamConfig, callbacks: Sequence[Callable[[Downstream, dict], None]] = ()):
        self.cfg = cfg
        self.callbacks = list(callbacks)
        self.output_dir = Path(cfg.run.output_dir)
        self.ckpt_dir = self.output_dir / "checkpoints"
        self._stop: str | None = None

    def request_stop(self, reason: str = "request") -> None:
        """Finish the current step, save a checkpoint and return from :meth:`fit`."""
        self._stop = self._stop or reason

    # ------------------------------------------------------------------ setup

    def build_model(self) -> tuple[Classifier, Dataset, Dataset]:
        c = self.cfg
        seed_everything(c.run.seed)
        backbone, self.source = load_encoder(c.model, drop_path=c.head.drop_path if c.task == "finetune" else 0.0)
        train, test = build_splits(c, backbone)
        self.num_classes = count_classes(c, train, test)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.run.seed + 1)  # the head's init, apart from the backbone's
            model = Classifier(backbone, self.num_classes, c.head.pool, c.head.norm, c.head.dropout, c.head.init_std)
        if c.train.freeze_encoder or c.task == "linprobe":
            model.freeze_encoder()
        return model, train, test

    def _setup(self) -> None:
        from maeflow.data import ShardedSampler, build_dataloader

        c, t = self.cfg, self.cfg.train
        set_threads(c.run.threads)
        self.strategy = Strategy.from_env(t.distributed, resolve_device(c.run.device))
        self.device, world = self.strategy.device, self.strategy.world_size
        self.precision = Precision(t.precision, self.device)
        raw, train, self.test_ds = self.build_model()
        fn = item_augmentation(c.augment, train, torch.as_tensor(train[0][0]))
        self.train_ds = AugmentedItems(train, fn) if fn is not None else train
        if c.data.batch_size % world:
            raise ValueError(f"data.batch_size={c.data.batch_size} is not divisible by {world} processes")
        self.sampler = ShardedSampler(len(self.train_ds), c.data.batch_size, world, self.strategy.dist.rank,
                                      shuffle=True, seed=c.run.seed)  # fmt: skip
        self.steps_per_epoch = self.sampler.steps_per_epoch
        if self.steps_per_epoch < 1:
            raise ValueError(f"{len(self.train_ds)} training items make no batch of {c.data.batch_size}")
        self.total_steps = t.epochs * self.steps_per_epoch
        if t.max_steps:
            self.total_steps = min(self.total_steps, t.max_steps)
        self.loader = build_dataloader(self.train_ds, c.data.batch_size // world, num_workers=c.data.num_workers,
                                       drop_last=True, sampler=self.sampler, seed=c.run.seed, device=self.device)
        raw.to(self.device)
        self.raw = raw
        self.wrapped = self.strategy.wrap(raw)
        self.peak_lr = t.lr or t.blr * c.data.batch_size / 256
        self.optimizer = self._optimizer(raw)
        warmup = min(self.total_steps, round(t.warmup_epochs * self.steps_per_epoch))
        self.scheduler = WarmupCosine(self.optimizer, self.peak_lr, self.total_steps, warmup, t.min_lr)
        self.mixer = batch_mixer(c.augment, self.num_classes, t.label_smoothing)
        self.ema = None
        if t.ema:
            if self.strategy.fsdp:
                raise ValueError("train.ema is not supported with FSDP (the parameters are sharded); use ddp")
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(raw, decay=t.ema)

    def _optimizer(self, model: Classifier) -> torch.optim.Optimizer:
        t = self.cfg.train
        if t.optimizer == "adamw":
            return build_optimizer(model, self.peak_lr, t.weight_decay, tuple(t.betas), fused="auto",
                                   layer_decay=t.layer_decay)  # fmt: skip
        from timm.optim import Lars

        # MAE's LARS: weight matrices adapt their step by the trust ratio and take the weight
        # decay; biases and norms neither
        trainable = [p for p in model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in trainable if p.ndim > 1], "weight_decay": t.weight_decay, "always_adapt": True},
            {"params": [p for p in trainable if p.ndim <= 1], "weight_decay": 0.0, "always_adapt": False},
        ]
        return Lars([g for g in groups if g["params"]], lr=self.peak_lr, momentum=t.momentum, trust_coeff=0.001)

    # ------------------------------------------------------------------ state

    def _state(self, epoch: int, step_in_epoch: int) -> dict[str, Any]:
        progress = {"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": self.global_step,
                    "best_top1": self.best_top1, "seed": self.cfg.run.seed}  # fmt: skip
        state = {**classifier_payload(self.raw, with_weights=False),
                 **ckpt.capture(self.strategy, self.wrapped, self.optimizer),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.precision.scaler.state_dict(),
                 "progress": progress, "config": self.cfg.to_dict()}  # fmt: skip
        if self.ema is not None:
            state["ema"] = {k: v.detach().cpu() for k, v in self.ema.module.state_dict().items()}
        return state

    def save(self, epoch: int, step_in_epoch: int) -> None:
        state = self._state(epoch, step_in_epoch)
        if self.strategy.is_main:
            log.info("saved checkpoint %s", ckpt.save_checkpoint(state, self.ckpt_dir, self.global_step,
                                                                  self.cfg.train.keep_last))  # fmt: skip
        self.strategy.barrier()
        self._saved_step = self.global_step

    def _resume(self) -> tuple[int, int]:
        found = ckpt.resume_source(self.cfg.run.resume, self.ckpt_dir)
        if found is None:
            return 0, 0
        path, state = found
        ckpt.check_resume_config(path, state.get("config"), self.cfg.to_dict())
        ckpt.restore(self.strategy, self.wrapped, self.optimizer, state)
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.precision.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema"):
            self.ema.module.load_state_dict(state["ema"])
        prog = state["progress"]
        self.global_step, self.best_top1 = int(prog["global_step"]), prog.get("best_top1")
        self._saved_step = self.global_step
        log.info("resumed from %s at epoch %d, step %d", path, prog["epoch"], self.global_step)
        return int(prog["epoch"]), int(prog["step_in_epoch"])

    # ------------------------------------------------------------------ steps

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        t = self.cfg.train
        if t.loss == "bce":
            if target.ndim == 1:
                target = F.one_hot(target.long(), self.num_classes).float()
            return F.binary_cross_entropy_with_logits(logits, target.float())
        if target.ndim == 2:  # soft targets of mixup / cutmix (label smoothing already in them)
            return torch.sum(-target * F.log_softmax(logits, dim=-1), dim=-1).mean()
        return F.cross_entropy(logits, target.long(), label_smoothing=t.label_smoothing)

    def _step(self, inputs: torch.Tensor, target: Any, seed: int) -> float:
        """One optimizer step; mixup, stochastic depth and dropout draw from ``seed``."""
        x = inputs.to(self.device, non_blocking=True)
        y = torch.as_tensor(target).to(self.device, non_blocking=True)
        scaler = self.precision.scaler
        with seeded(seed, self.device):
            if self.mixer is not None:  # timm's cutmix boxes the last two axes: clips go in as (B, C·T, H, W)
                flat = x.flatten(1, 2) if x.ndim == 5 else x
                if y.ndim == 2:  # multi-hot targets: timm mixes the inputs, the targets mix with its lam
                    lam = self.mixer._mix_batch(flat)
                    y = y.float() * lam + y.float().flip(0) * (1.0 - lam)
                else:
                    flat, y = self.mixer(flat, y.long())
                x = flat.view(inputs.shape)
            with self.precision.autocast():
                logits = self.wrapped(x)  # (B, C)
            loss = self._loss(logits.float(), y)
            scaler.scale(loss).backward()
        if self.cfg.train.clip_grad is not None:
            scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.raw.parameters(), self.cfg.train.clip_grad)
        scaler.step(self.optimizer)
        scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.raw, step=self.global_step)
        # one all-reduce: the mean loss, and whether any process was asked to stop (all stop together)
        stop = torch.tensor(float(self._stop is not None), device=loss.device)
        packed = self.strategy.all_reduce_mean(torch.stack([loss.detach(), stop]))
        self._agreed_stop = bool(packed[1] > 0)
        value = float(packed[0])
        if not math.isfinite(value):
            raise ValueError(f"the loss is {value} at step {self.global_step + 1}: lower the lr, use bf16 instead "
                             "of fp16, or set train.clip_grad")  # fmt: skip
        return value

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        """top-1 / top-5 (%), mean loss and the confusion matrix on the held-out split, summed over processes."""
        from torch.utils.data import DataLoader

        was = model.training
        model.eval()
        c = self.num_classes
        shard = PaddedShard(self.test_ds, self.strategy.dist.rank, self.strategy.world_size)
        loader = DataLoader(shard, batch_size=max(1, self.cfg.data.batch_size // self.strategy.world_size),
                            num_workers=self.cfg.data.num_workers)  # fmt: skip
        sums = torch.zeros(4, dtype=torch.float64, device=self.device)  # n, top1, top5, loss
        confusion = torch.zeros(c * c, dtype=torch.float64, device=self.device)
        for x, target, valid in loader:
            keep = valid.bool().to(self.device)
            with self.precision.autocast():
                logits = model(x.to(self.device)).float()
            y = labels_of(target).to(self.device)
            logits, y = logits[keep], y[keep]
            if not len(y):
                continue
            h1, h5 = topk_hits(logits, y)
            loss = F.cross_entropy(logits, y, reduction="sum")
            sums += torch.tensor([len(y), h1, h5, float(loss)], dtype=torch.float64, device=self.device)
            confusion += torch.bincount(y * c + logits.argmax(1), minlength=c * c).double()
        model.train(was)
        packed = self.strategy.all_reduce_mean(torch.cat([sums, confusion])) * self.strategy.world_size
        n = max(float(packed[0]), 1.0)
        return {"top1": 100 * float(packed[1]) / n, "top5": 100 * float(packed[2]) / n,
                "test_loss": float(packed[3]) / n, "num_test": int(packed[0]),
                "confusion": packed[4:].round().long().view(c, c).cpu()}  # fmt: skip

    # ------------------------------------------------------------------ loop

    def fit(self) -> DownstreamResult:
        c = self.cfg
        if c.train.optimizer == "protocol":
            from maeflow.downstream.protocol import fit_protocol

            return fit_protocol(self)
        self._setup()
        from maeflow.data import sample_seed
        from maeflow.train.logger import MetricsLogger

        self.global_step, self.best_top1, self._saved_step, self._agreed_stop = 0, None, -1, False
        epoch, step_in_epoch = self._resume()
        main = self.strategy.is_main
        if main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "config.yaml").write_text(c.to_yaml())
            log.info("%s %s from %s: %d classes, %d steps (%d per epoch), batch %d, peak lr %.3g, %s on %s",
                     c.task, self.raw.model_name, self.source, self.num_classes, self.total_steps,
                     self.steps_per_epoch, c.data.batch_size, self.peak_lr, self.precision.name,
                     self.device)  # fmt: skip
        self.metrics = MetricsLogger(self.output_dir, enabled=main, tensorboard=False)
        bar = None
        if main and c.train.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_steps, initial=self.global_step, unit="step", desc=c.task, dynamic_ncols=True)
        old = self._install_signals()
        result = DownstreamResult(self.output_dir, 0, 0)
        last: dict[str, Any] | None = None
        window = [0.0, 0]
        try:
            self.wrapped.train()
            while epoch < c.train.epochs and self.global_step < self.total_steps and self._stop is None:
                self.sampler.set_epoch(epoch)
                self.sampler.set_start(step_in_epoch * (c.data.batch_size // self.strategy.world_size))
                batches = iter(self.loader)
                while step_in_epoch < self.steps_per_epoch and self.global_step < self.total_steps:
                    inputs, target, _pos, _seeds = next(batches)
                    lr = self.scheduler.apply()
                    loss = self._step(inputs, target, sample_seed(c.run.seed, self.global_step, 7))
                    self.scheduler.step()
                    self.global_step += 1
                    step_in_epoch += 1
                    record = {"step": self.global_step, "epoch": epoch + step_in_epoch / self.steps_per_epoch,
                              "loss": loss, "lr": lr}  # fmt: skip
                    for cb in self.callbacks:
                        cb(self, record)
                    window = [window[0] + loss, window[1] + 1]
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
                    if self.global_step % c.train.log_every == 0 or step_in_epoch == self.steps_per_epoch:
                        self.metrics.write({"type": "train", "step": self.global_step,
                                            "epoch": round(record["epoch"], 4), "loss": window[0] / window[1],
                                            "lr": lr}, self.global_step)  # fmt: skip
                        window = [0.0, 0]
                    if self._agreed_stop or (self._stop and not self.strategy.dist.enabled):
                        self._stop = self._stop or "request"
                        break
                if self._stop is not None or step_in_epoch < self.steps_per_epoch:
                    break
                epoch, step_in_epoch = epoch + 1, 0
                last = self._end_epoch(epoch, result)
                if c.train.ckpt_every_epochs and epoch % c.train.ckpt_every_epochs == 0:
                    self.save(epoch, 0)
            if self._saved_step != self.global_step and self.global_step > 0:
                self.save(epoch, step_in_epoch)
        finally:
            if bar is not None:
                bar.close()
            for sig, h in old.items():
                signal.signal(sig, h)
        result.global_step, result.epoch, result.interrupted = self.global_step, epoch, self._stop
        if self._stop is None:
            if last is None:  # ended by max_steps inside an epoch
                last = self._end_epoch(epoch, result)
            self._finish(last, result)
        self.metrics.close()
        return result

    def _end_epoch(self, epoch: int, result: DownstreamResult) -> dict[str, Any]:
        ev = self.evaluate(self.wrapped)
        record = {"type": "eval", "step": self.global_step, "epoch": epoch,
                  **{k: v for k, v in ev.items() if k != "confusion"}}  # fmt: skip
        if self.ema is not None:
            record["ema_top1"] = result.ema_top1 = self.evaluate(self.ema.module)["top1"]
        self.best_top1 = max(self.best_top1 or 0.0, ev["top1"])
        record["best_top1"] = self.best_top1
        self.metrics.write(record, self.global_step)
        result.history.append(record)
        if self.strategy.is_main:
            log.info("epoch %d: top-1 %.2f%%, top-5 %.2f%%, test loss %.4f", epoch, ev["top1"], ev["top5"],
                     ev["test_loss"])  # fmt: skip
        return ev

    def _finish(self, last: dict[str, Any], result: DownstreamResult) -> None:
        """Final files: the classifier (maeflow + safetensors), the confusion matrix, summary.json."""
        state = self.strategy.model_state(self.wrapped)  # collective under FSDP
        result.top1, result.top5, result.best_top1 = last["top1"], last["top5"], self.best_top1
        if not self.strategy.is_main:
            return
        model = self.raw if not self.strategy.fsdp else None
        if model is None:  # FSDP: a CPU copy holds the gathered weights
            model, _, _ = self.build_model()
            model.load_state_dict(state)
        pt, st = save_classifier(model, self.output_dir)
        title = f"{self.cfg.task} {self.raw.model_name}: top-1 {last['top1']:.2f}% ({last['num_test']} held-out)"
        png = confusion_figure(last["confusion"], self.output_dir / "confusion.png", title)
        result.files = {"classifier": pt, "safetensors": st, "confusion": png}
        summary = {"task": self.cfg.task, "source": self.source, "top1": last["top1"], "top5": last["top5"],
                   "best_top1": self.best_top1, "ema_top1": result.ema_top1, "steps": self.global_step,
                   "num_classes": self.num_classes, "num_test": last["num_test"]}  # fmt: skip
        (self.output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        result.files["summary"] = self.output_dir / "summary.json"

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum, frame):
            if self._stop is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            log.warning("%s received: finishing this step, saving a checkpoint, then exiting",
                        signal.Signals(signum).name)  # fmt: skip
            self._stop = signal.Signals(signum).name

        return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
