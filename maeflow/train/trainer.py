"""One pretraining recipe for every modality, on the runtime (:mod:`maeflow.runtime`).

:class:`Trainer` receives built objects — a ``MaskedAutoencoder`` (or any module whose
``forward(inputs)`` returns an object with a scalar ``.loss``), a dataset of ``(inputs, label)``
items — and the validated config sections ``train``, ``data``, ``run`` and ``eval``
(:mod:`maeflow.config`) as they are; it never reads argv or config files.
:func:`maeflow.train.build_trainer` turns a config into these objects.

Reading order: ``_setup`` composes the runtime (device, strategy, precision, optimizer, loader;
step sizes from :mod:`maeflow.train.plan`), ``fit`` runs epochs, ``_run_epoch`` runs
:func:`maeflow.runtime.pretrain_step` per optimizer step. Each sample's augmentation and mask are
seeded from ``(seed, epoch, position)`` by the loader (:class:`maeflow.data.SeededItems`), so a
run repeats exactly across worker counts, process counts and resumes.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from maeflow.checkpoint import FORMAT_TAG
from maeflow.config import DataConfig, EvalConfig, RunConfig, TrainConfig
from maeflow.data import ShardedSampler, build_dataloader, num_skipped, sample_seed
from maeflow.runtime import (
    Precision,
    Strategy,
    WarmupCosine,
    build_optimizer,
    compile_stacks,
    pretrain_step,
    resolve_device,
)
from maeflow.runtime import state as ckpt
from maeflow.runtime.device import set_threads
from maeflow.train.logger import MetricsLogger
from maeflow.train.plan import plan_steps
from maeflow.train.reports import AttentionLog, loss_baseline, reconstruction_figure, run_evaluator

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf and ``nonfinite="stop"`` (or too many steps were skipped)."""


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` did."""

    global_step: int
    epoch: int
    output_dir: Path
    checkpoint: Path | None
    last_loss: float | None
    eval: dict[str, float] = field(default_factory=dict)
    interrupted: str | None = None  # "SIGTERM", "SIGINT" or "request" when stopped early
    skipped_steps: int = 0
    reconstruction: Path | None = None


class Trainer:
    """MAE pretraining with checkpoints, exact resumption, logging and probes.

    :param model: the model (built, on CPU or already on its device).
    :param dataset: training items ``(inputs, label)``.
    :param train, data, run, eval: the config sections (``data`` for the loader and batch size;
        ``eval`` for the schedule: ``every_epochs``, ``final``).
    :param evaluator: optional ``fn(model) -> dict[str, float]`` (e.g. kNN/linear probes), run
        on rank 0 every ``eval.every_epochs`` and/or at the end. An evaluator with a ``final``
        keyword is told which call is the end-of-training one: :class:`~maeflow.train.ProbeEvaluator`
        fine-tunes only then.
    :param config: the resolved run config as plain data; saved as ``config.yaml`` and inside
        every checkpoint.
    :param display_options: passed to the modality's visualizer (e.g. input mean/std).
    :param visual_inputs: a few inputs for the final reconstruction figure (default: the first
        items of ``dataset``).
    :param callbacks: ``fn(trainer, record)`` after every optimizer step, on every rank;
        ``record`` holds ``step``, ``epoch``, ``loss`` (mean over processes), ``lr``, ``skipped``.
    """

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        train: TrainConfig,
        data: DataConfig,
        run: RunConfig,
        eval: EvalConfig | None = None,
        evaluator: Callable[[nn.Module], dict[str, float]] | None = None,
        config: dict[str, Any] | None = None,
        display_options: dict[str, Any] | None = None,
        visual_inputs: torch.Tensor | None = None,
        callbacks: Sequence[Callable[[Trainer, dict[str, Any]], None]] = (),
    ):
        self.model, self.dataset = model, dataset
        self.train, self.data, self.run, self.eval = train, data, run, eval or EvalConfig()
        self.evaluator = evaluator
        self.config = config
        self.display_options = dict(display_options or {})
        self.visual_inputs = visual_inputs
        self.callbacks = list(callbacks)
        self.output_dir = Path(run.output_dir)
        self.ckpt_dir = self.output_dir / "checkpoints"
        self._stop: str | None = None
        self.eval_results: dict[str, float] = {}

    def request_stop(self, reason: str = "request") -> None:
        """Finish the current optimizer step, save a checkpoint and return from :meth:`fit`."""
        self._stop = self._stop or reason

    # ------------------------------------------------------------------ setup

    def _setup(self) -> None:
        t, d, run = self.train, self.data, self.run
        set_threads(run.threads)
        self.strategy = Strategy.from_env(t.distributed, resolve_device(run.device))
        self.device = self.strategy.device
        self.precision = Precision(t.precision, self.device)
        self.plan = p = plan_steps(t, d.batch_size, self.strategy.world_size, self.dataset)
        self.sampler = ShardedSampler(len(self.dataset), p.eff_batch, self.strategy.world_size,
                                      self.strategy.dist.rank, shuffle=d.shuffle, seed=run.seed,
                                      order=getattr(self.dataset, "epoch_order", None))  # fmt: skip
        raw = self.model
        if t.attention is not None:
            from maeflow.nn import set_attention_backend

            set_attention_backend(raw, t.attention)
        raw.to(self.device)
        self.seeded_masks = hasattr(raw, "masker")  # masks drawn from the batch's seeds
        if t.compile:
            compile_stacks(raw)
        self.wrapped = self.strategy.wrap(raw)  # FSDP2: the optimizer must see the sharded parameters
        self.optimizer = build_optimizer(raw, p.peak_lr, t.weight_decay, tuple(t.betas), t.eps, fused=t.fused_optimizer)
        self.scheduler = WarmupCosine(self.optimizer, p.peak_lr, p.total_steps, p.warmup_steps, t.min_lr)
        self.loader = build_dataloader(self.dataset, p.local_batch, num_workers=d.num_workers,
                                       pin_memory=d.pin_memory, persistent_workers=d.persistent_workers,
                                       drop_last=True, sampler=self.sampler, seed=run.seed,
                                       prefetch_factor=d.prefetch_factor, device=self.device,
                                       device_pipeline=d.device_pipeline, verbose=self.strategy.is_main)  # fmt: skip
        self.attention_log = AttentionLog()

    # ------------------------------------------------------------------ state

    def _state(self, epoch: int, step_in_epoch: int) -> dict[str, Any]:
        """The full checkpoint (collective under FSDP and for RNG states: call on every rank)."""
        progress = {"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": self.global_step,
                    "effective_batch_size": self.plan.eff_batch, "world_size": self.strategy.world_size,
                    "skipped_steps": self.skipped, "seed": self.run.seed}  # fmt: skip
        return {"format": FORMAT_TAG, "model_name": getattr(self.model, "model_name", None),
                "model_args": dict(getattr(self.model, "model_args", {})),
                **ckpt.capture(self.strategy, self.wrapped, self.optimizer),
                "scheduler": self.scheduler.state_dict(), "scaler": self.precision.scaler.state_dict(),
                "progress": progress, "config": self.config or {}}  # fmt: skip

    def save(self, epoch: int, step_in_epoch: int) -> Path | None:
        """Write a checkpoint (rank 0 writes; every rank must call). Returns its path on rank 0."""
        state = self._state(epoch, step_in_epoch)
        path = None
        if self.strategy.is_main:
            path = ckpt.save_checkpoint(state, self.ckpt_dir, self.global_step, self.train.keep_last)
            log.info("saved checkpoint %s", path)
        self.strategy.barrier()
        self._saved_step = self.global_step
        return path

    def _resume(self) -> tuple[int, int]:
        """Restore from ``run.resume``; returns ``(epoch, step_in_epoch)`` to start at."""
        found = ckpt.resume_source(self.run.resume, self.ckpt_dir)
        if found is None:
            return 0, 0
        path, state = found
        ckpt.check_resume_config(path, state.get("config"), self.config, self.run.resume_mismatch)
        prog = state["progress"]
        if prog.get("effective_batch_size") != self.plan.eff_batch and prog.get("step_in_epoch", 0):
            log.warning("resuming mid-epoch with effective batch %s (checkpoint: %s): the data position is "
                        "approximate", self.plan.eff_batch, prog.get("effective_batch_size"))  # fmt: skip
        try:
            ckpt.restore(self.strategy, self.wrapped, self.optimizer, state)
        except (RuntimeError, KeyError, ValueError) as exc:  # load_state_dict: other parameter names or shapes
            first = " ".join(str(exc).split())[:300]
            raise ValueError(f"cannot resume {path}: its model does not fit this one ({first}); use another "
                             "run.output_dir (or run.resume=never) to start over") from None  # fmt: skip
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.precision.scaler.load_state_dict(state["scaler"])
        self.global_step = int(prog["global_step"])
        self.skipped = int(prog.get("skipped_steps", 0))
        self._saved_step = self.global_step
        if self.strategy.is_main:
            log.info("resumed from %s at epoch %d, step %d", path, prog["epoch"], self.global_step)
        return int(prog["epoch"]), int(prog["step_in_epoch"])

    # ------------------------------------------------------------------ loop

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum, frame):
            name = signal.Signals(signum).name
            if self._stop is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # second Ctrl-C: stop now
            log.warning("%s received: finishing this step, saving a checkpoint, then exiting", name)
            self._stop = name

        return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def _micro_batches(self, batches: Iterator, epoch: int) -> Iterator[tuple[torch.Tensor, Any]]:
        """``(inputs, mask_seeds)`` for one step: each sample's own seed from the loader, or
        (``mask_seed: batch``) one seed per micro-batch of this process."""
        for micro in range(self.plan.accum):
            inputs, _labels, _positions, seeds = next(batches)
            if not self.seeded_masks:
                seeds = None
            elif self.train.mask_seed == "batch":
                seeds = sample_seed(self.run.seed, epoch, self.global_step, self.strategy.dist.rank, micro, 2)
            yield inputs, seeds

    def _check_finite(self, loss: float, epoch: int, lr: float) -> None:
        """Raise or count a skipped step for a non-finite loss (the step itself was not taken)."""
        # the step being taken, 1-based: the number its metrics.jsonl record and callbacks carry
        where = f"epoch {epoch}, step {self.global_step + 1} (lr {lr:.3g})"
        if self.train.nonfinite == "stop":
            raise NonFiniteLossError(
                f"loss is {loss} at {where}; stopped without saving (the last checkpoint, if any, is in "
                f"{self.ckpt_dir}). Try a lower lr, bf16 instead of fp16, train.clip_grad, or train.nonfinite=skip"
            )
        self.skipped += 1
        log.warning("non-finite loss (%s) at %s: step skipped (%d so far)", loss, where, self.skipped)
        if self.skipped > self.train.max_skipped_steps:
            limit = self.train.max_skipped_steps
            raise NonFiniteLossError(f"{self.skipped} steps skipped for non-finite loss (more than "
                                     f"train.max_skipped_steps={limit}); stopping at {where}")  # fmt: skip

    def _run_epoch(self, epoch: int, step_in_epoch: int) -> int:
        """Steps of ``epoch`` from ``step_in_epoch`` until its end, ``max_steps`` or a stop;
        returns the step in epoch reached."""
        self.sampler.set_epoch(epoch)
        self.sampler.set_start(step_in_epoch * self.plan.accum * self.plan.local_batch)
        batches = iter(self.loader)
        while step_in_epoch < self.plan.steps_per_epoch and self.global_step < self.plan.total_steps:
            lr = self.scheduler.apply()
            out = pretrain_step(self.wrapped, self.optimizer, self._micro_batches(batches, epoch), self.precision,
                                accum=self.plan.accum, strategy=self.strategy, clip_grad=self.train.clip_grad,
                                stop=self._stop is not None)  # fmt: skip
            if out.finite:
                self.last_loss = out.loss
            else:
                self._check_finite(out.loss, epoch, lr)
            self.scheduler.step()
            self.global_step += 1
            step_in_epoch += 1
            self._report_step(out, epoch, step_in_epoch, lr)
            if self.train.ckpt_every_steps and self.global_step % self.train.ckpt_every_steps == 0:
                self.final_path = self.save(epoch, step_in_epoch) or self.final_path
            if out.stop or (self._stop and not self.strategy.dist.enabled):
                self._stop = self._stop or "request"
                break
        return step_in_epoch

    def _report_step(self, out, epoch: int, step_in_epoch: int, lr: float) -> None:
        """Callbacks every step; a ``train`` record (mean loss of the window) every ``log_every``."""
        record = {"step": self.global_step, "epoch": epoch + step_in_epoch / self.plan.steps_per_epoch,
                  "loss": out.loss, "lr": lr, "skipped": self.skipped}  # fmt: skip
        for cb in self.callbacks:
            cb(self, record)
        if out.finite:
            self._window[0] += out.loss
            self._window[1] += 1
        if self.bar is not None:
            self.bar.update(1)
        if self.global_step % self.train.log_every and step_in_epoch != self.plan.steps_per_epoch:
            return
        total, steps, since = self._window
        now = time.perf_counter()
        sps = max(steps, 1) * self.plan.eff_batch / max(now - since, 1e-9)
        entry = {"type": "train", "step": self.global_step, "epoch": round(record["epoch"], 4),
                 "loss": total / steps if steps else float("nan"), "lr": lr, "samples_per_s": round(sps, 2),
                 "skipped": self.skipped}  # fmt: skip
        if self.trivial is not None:
            entry["trivial_loss"] = self.trivial["best"]
        if out.grad_norm is not None:
            entry["grad_norm"] = out.grad_norm
        skipped = num_skipped(self.dataset)  # unreadable files the dataset skipped
        if skipped is not None:
            entry["data_skipped"] = skipped
        self.metrics.write(entry, self.global_step)
        self.attention_log.write(self.metrics, self.global_step)
        if self.bar is not None:
            trivial = {} if self.trivial is None else {"trivial": f"{self.trivial['best']:.4f}"}
            self.bar.set_postfix(loss=f"{entry['loss']:.4f}", **trivial, lr=f"{lr:.2e}", samples_s=f"{sps:.0f}")
        self._window = [0.0, 0, now]

    def _open_outputs(self) -> None:
        main = self.strategy.is_main
        if main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            if self.config is not None:
                import yaml

                (self.output_dir / "config.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False))
            log.info(
                "training %s: %d steps (%d per epoch), effective batch %d = %d × %d processes × %d accumulation, "
                "peak lr %.3g, %s on %s", getattr(self.model, "model_name", type(self.model).__name__),
                self.plan.total_steps, self.plan.steps_per_epoch, self.plan.eff_batch, self.plan.local_batch,
                self.strategy.world_size, self.plan.accum, self.plan.peak_lr, self.precision.name, self.device,
            )  # fmt: skip
        self.metrics = MetricsLogger(self.output_dir, enabled=main, tensorboard=self.train.tensorboard)
        # what a model that learned nothing scores, logged beside every loss (not under FSDP:
        # the parameters are sharded)
        self.trivial = None
        if main and not self.strategy.fsdp:
            self.trivial = loss_baseline(self.strategy.unwrap(self.wrapped), self.dataset, self.device, self.run.seed)
        if self.trivial is not None:
            self.metrics.write({"type": "baseline", "step": self.global_step, **self.trivial})
            log.info("trivial baseline of the loss (a constant prediction, nothing learned): %.4g",
                     self.trivial["best"])
        self.bar = None
        if main and self.train.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.plan.total_steps, initial=self.global_step, unit="step", dynamic_ncols=True)

    def fit(self) -> TrainResult:
        """Train to the end (or until stopped); returns a :class:`TrainResult`."""
        self._setup()
        t = self.train
        self.global_step, self.skipped, self._saved_step = 0, 0, -1
        self.last_loss, self.final_path = None, None
        epoch, step_in_epoch = self._resume()
        self._open_outputs()
        old_signals = self._install_signals()
        try:
            self.model.train()
            self._window = [0.0, 0, time.perf_counter()]
            while epoch < t.epochs and self.global_step < self.plan.total_steps and self._stop is None:
                step_in_epoch = self._run_epoch(epoch, step_in_epoch)
                if self._stop is not None or step_in_epoch < self.plan.steps_per_epoch:  # stopped, or max_steps
                    break
                epoch, step_in_epoch = epoch + 1, 0
                if t.ckpt_every_epochs and epoch % t.ckpt_every_epochs == 0 and self._saved_step != self.global_step:
                    self.final_path = self.save(epoch, 0) or self.final_path
                if self.eval.every_epochs and epoch % self.eval.every_epochs == 0 and epoch < t.epochs:
                    self._evaluate(epoch, final=False)
            if self._saved_step != self.global_step and self.global_step > 0:
                self.final_path = self.save(epoch, step_in_epoch) or self.final_path
            elif self.strategy.is_main and self.global_step > 0:
                self.final_path = self.ckpt_dir / "last.pt"
        finally:
            if self.bar is not None:
                self.bar.close()
            for sig, h in old_signals.items():
                signal.signal(sig, h)
        result = TrainResult(self.global_step, epoch, self.output_dir, self.final_path, self.last_loss,
                             interrupted=self._stop, skipped_steps=self.skipped)  # fmt: skip
        if self._stop is None:
            self._finish(epoch, result)
        result.eval = dict(self.eval_results)
        self.metrics.close()
        return result

    def _finish(self, epoch: int, result: TrainResult) -> None:
        """The final evaluation and the reconstruction figure of a run that ran to its end."""
        if self.eval.final and self.evaluator is not None:
            self._evaluate(epoch, final=True)
        if not (self.train.reconstruction and self.strategy.is_main):
            return
        if self.strategy.fsdp:
            log.info("no reconstruction figure under FSDP (the model is sharded); use `maeflow visualize` "
                     "on the checkpoint")  # fmt: skip
            return
        result.reconstruction = reconstruction_figure(self.strategy.unwrap(self.wrapped), self.dataset,
                                                      self.visual_inputs, self.output_dir / "reconstruction.png",
                                                      self.run.seed, self.display_options)  # fmt: skip

    def _evaluate(self, epoch: int, final: bool) -> None:
        if self.evaluator is None:
            return
        if self.strategy.fsdp:
            log.warning("evaluation during FSDP training is not supported; evaluate the saved checkpoint "
                        "with `maeflow eval` instead")  # fmt: skip
            return
        if self.strategy.is_main:
            results = run_evaluator(self.evaluator, self.strategy.unwrap(self.wrapped), final)
            self.eval_results = results
            record = {"type": "eval", "step": self.global_step, "epoch": epoch, "final": final, **results}
            self.metrics.write(record, self.global_step)
            self.attention_log.write(self.metrics, self.global_step)  # the probes' shapes (no gradients)
            log.info("eval at epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
        self.strategy.barrier()
