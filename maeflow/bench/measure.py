"""Measuring one bench entry: build, count FLOPs, train a few steps, time them, probe.

A short recipe on the runtime the trainer runs on (:mod:`maeflow.runtime`): its device
resolver, :class:`~maeflow.runtime.Precision`, optimizer factory and :data:`STEP` — the very
pretraining step function of the trainer — fed by the trainer's loader (per-sample mask seeds
from :class:`~maeflow.data.ShardedSampler` positions, the dataset's device pipeline) for
dataset entries, and by one synthetic batch with the seeds the trainer would draw for it.

:func:`run_entry` returns a flat result mapping (see :data:`RESULT_FIELDS`); it raises on
failure, and the runner turns the exception into a failed row.
"""

from __future__ import annotations

import logging
import resource
import statistics
import sys
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from maeflow.bench.config import BenchEntry, DataSpec
from maeflow.bench.subjects import subject_class
from maeflow.data import sample_seed
from maeflow.runtime import Precision, build_optimizer, pretrain_step, resolve_device, set_threads

log = logging.getLogger(__name__)

STEP = pretrain_step  # the trainer's optimizer step: what the bench times is what training runs

# every field a result carries; numbers, or a string beginning "n/a" saying why not
RESULT_FIELDS: tuple[str, ...] = (
    "name", "kind", "preset", "data", "batch", "steps", "warmup", "precision", "attention", "attention_kernels",
    "compile", "optimizer", "device", "status", "error", "params", "tokens_per_sample", "visible_tokens_per_sample",
    "flops_per_sample", "step_time_ms", "samples_per_s", "tokens_per_s", "tflops", "peak_mem_mb", "peak_mem_kind",
    "final_loss", "baseline_loss", "baseline_kind", "baselines", "probe", "vs_hf", "vs_hf_peak_mem", "wall_s",
)  # fmt: skip


NO_PEER = "n/a: no matching peer entry"


def _cpu_sdpa_flop(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_sdpa_backward_flop(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


def _flop_mapping() -> dict[Any, Any]:
    """FlopCounterMode knows SDPA's CUDA kernels but not the CPU flash kernel; count it the same
    way (two matmuls forward, four backward) so CPU and GPU counts agree."""
    aten = torch.ops.aten
    mapping = {}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_sdpa_flop
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward"):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu_backward] = _cpu_sdpa_backward_flop
    return mapping


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_flops(subject, inputs: torch.Tensor, precision: Precision) -> tuple[int, int]:
    """Forward+backward FLOPs of ``inputs`` (B samples) counted by ``FlopCounterMode`` on the
    eager model, and the visible tokens per sample seen on the way. Gradients are cleared."""
    module = subject.module
    module.train()
    with subject.counting_backend(), FlopCounterMode(display=False, custom_mapping=_flop_mapping()) as counter:
        with precision.autocast():
            loss, aux = subject.loss(module, inputs)
        loss.backward()
    visible = subject.visible_tokens(aux)
    module.zero_grad(set_to_none=True)
    return int(counter.get_total_flops()), visible


class _Forward:
    """What :data:`STEP` calls as its model: the subject's forward, keeping the last output for
    the trivial baselines (the step itself returns only the loss)."""

    def __init__(self, subject):
        self.subject = subject
        self.module = subject.module
        self.aux: Any = None

    def __call__(self, inputs: torch.Tensor, **kwargs: Any):
        loss, self.aux = self.subject.loss(self.module, inputs, **kwargs)
        return _Loss(loss)

    def parameters(self):
        return self.module.parameters()


class _Loss:
    def __init__(self, loss: torch.Tensor):
        self.loss = loss


class _Parameters:
    """A subject's parameters as the optimizer factory reads them, with its no-decay names."""

    def __init__(self, subject):
        self.subject = subject

    def named_parameters(self):
        return self.subject.module.named_parameters()

    def no_weight_decay_names(self) -> set[str]:
        return self.subject.no_weight_decay()


def _dataset_batches(spec: DataSpec, model, batch: int, seed: int, device: torch.device):
    """Endless ``(inputs, mask_seeds)`` from a registered dataset through the trainer's loader:
    a :class:`~maeflow.data.ShardedSampler` (items and masks seeded by their position in the
    epoch), the dataset's device pipeline when ``device_pipeline`` asks for it."""
    from maeflow.data import ShardedSampler, build_dataloader, build_dataset

    dataset = build_dataset(spec.dataset, "train", model=model, **spec.options)
    if len(dataset) < batch:
        raise ValueError(f"dataset {spec.dataset!r} has {len(dataset)} items, fewer than the batch ({batch})")
    sampler = ShardedSampler(len(dataset), batch, shuffle=True, seed=seed)
    loader = build_dataloader(dataset, batch, num_workers=spec.workers, drop_last=True, sampler=sampler, seed=seed,
                              device=device, device_pipeline=spec.device_pipeline)  # fmt: skip
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        for inputs, _labels, _positions, seeds in loader:
            yield inputs.to(device, non_blocking=True), seeds
        epoch += 1


def _synthetic_seeds(seed: int, step: int, batch: int) -> list[int]:
    """The mask seeds the trainer would give the samples of ``step`` in its first epoch."""
    return [sample_seed(seed, 0, step * batch + i, 1) for i in range(batch)]


def peak_memory(device: torch.device) -> tuple[float, str]:
    """Peak memory in MiB and what it is: the CUDA allocator's maximum, or this process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda max allocated"
    if sys.platform.startswith("win"):
        import psutil

        return psutil.Process().memory_info().peak_wset / 2**20, "peak RSS"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return rss * scale / 2**20, "peak RSS"


PROBE_METRICS = ("knn_top1", "linear_top1")


def _probe_datasets(spec: DataSpec, model) -> tuple[Any, Any]:
    """The labelled train/test splits, without augmentation (the probes' rule, :func:`probe_options`)."""
    from maeflow.data import build_dataset
    from maeflow.eval.probe import probe_options

    options = probe_options(spec.dataset, spec.options)
    return (build_dataset(spec.dataset, "train", model=model, **options),
            build_dataset(spec.dataset, "test", model=model, **options))  # fmt: skip


def run_probe(subject, entry: BenchEntry, initial_state: dict[str, torch.Tensor], precision: Precision):
    """kNN / linear-probe top-1 (percent) of the pretrained encoder next to the same encoder at
    its initial (random) weights, through ``maeflow.eval.evaluate_encoder``."""
    try:
        from maeflow.eval import evaluate_encoder
    except ImportError:
        return "n/a: probes unavailable (maeflow.eval.evaluate_encoder is not installed)"
    model = subject.module
    train, test = _probe_datasets(entry.probe_source, model)
    options = {"device": precision.device, **entry.probe_options}
    if precision.name != "fp32":
        options.setdefault("autocast_dtype", precision.dtype)
    trained = evaluate_encoder(model, train, test, **options)
    trained_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(initial_state)
    random_init = evaluate_encoder(model, train, test, **options)
    model.load_state_dict(trained_state)
    out: dict[str, Any] = {}
    for key in PROBE_METRICS:
        out[key] = float(trained[key])
        out[f"random_init_{key}"] = float(random_init[key])
    out["num_train"], out["num_test"] = int(trained["num_train"]), int(trained["num_test"])
    return out


def run_entry(entry: BenchEntry, device_name: str = "auto", threads: int | None = None) -> dict[str, Any]:
    """Measure one entry; returns the filled result mapping (``status="ok"``)."""
    started = time.perf_counter()
    set_threads(threads)
    device = resolve_device(device_name)
    precision = Precision(entry.precision, device)
    torch.manual_seed(entry.seed)
    subject = subject_class(entry.kind)(entry.preset, dict(entry.args), entry.attention)
    module = subject.module.to(device)
    params = sum(p.numel() for p in module.parameters() if p.requires_grad)  # fixed tables excluded
    gen = torch.Generator().manual_seed(entry.seed)

    if isinstance(entry.data, DataSpec):
        batches = _dataset_batches(entry.data, module, entry.batch, entry.seed, device)
        first, first_seeds = next(batches)
    else:
        # made once, on the device: the model alone is measured
        first, first_seeds = subject.example_inputs(entry.batch, generator=gen).to(device), None
        batches = None

    # the probes' random-init reference: the weights before any update
    initial_state = {k: v.detach().clone() for k, v in module.state_dict().items()} if entry.probe else {}

    count_batch = min(entry.flop_batch, first.shape[0])
    flops, visible = count_flops(subject, first[:count_batch], precision)
    flops_per_sample = flops / count_batch
    log.info("%s: %s parameters, %.4g GFLOP/sample (fwd+bwd), built and counted in %.1f s", entry.name,
             f"{params:,}", flops_per_sample / 1e9, time.perf_counter() - started)  # fmt: skip

    spec = entry.optimizer
    optimizer = build_optimizer(_Parameters(subject), spec.lr, spec.weight_decay, tuple(spec.betas), fused=spec.fused)
    if entry.compile:
        subject.compile()
    forward = _Forward(subject)
    module.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    times: list[float] = []
    losses: list[float] = []
    baselines: dict[str, list[float]] = {}
    inputs, seeds = first, first_seeds
    for step in range(entry.steps):
        if batches is not None and step > 0:
            inputs, seeds = next(batches)
        elif batches is None:
            seeds = _synthetic_seeds(entry.seed, step, entry.batch)
        _sync(device)
        t0 = time.perf_counter()
        out = STEP(forward, optimizer, [(inputs, seeds if subject.seeded_masks else None)], precision)
        _sync(device)
        elapsed = time.perf_counter() - t0
        if not out.finite:
            raise FloatingPointError(f"loss became {out.loss} at step {step}")
        if step >= entry.warmup:
            times.append(elapsed)
        if (step + 1) % max(1, entry.steps // 4) == 0 or step + 1 == entry.steps:
            log.info("%s: step %d/%d, loss %.4f, %.1f ms/step", entry.name, step + 1, entry.steps, out.loss,
                     elapsed * 1e3)  # fmt: skip
        if step >= entry.steps - entry.loss_window:
            losses.append(out.loss)
            for kind, b in subject.baselines(forward.aux).items():
                baselines.setdefault(kind, []).append(float(b))
    peak_mb, peak_kind = peak_memory(device)
    kernels = _attention_kernels()

    baseline_means = {k: statistics.fmean(v) for k, v in baselines.items()}
    baseline_kind, baseline = min(baseline_means.items(), key=lambda kv: kv[1])  # the strongest trivial one
    step_s = statistics.median(times)
    samples_per_s = entry.batch / step_s
    tokens = subject.num_tokens()
    probe: Any = "n/a: not asked for (probe: false)"
    if entry.probe:
        t_probe = time.perf_counter()
        probe = run_probe(subject, entry, initial_state, precision)
        log.info("%s: probes %s in %.1f s", entry.name, probe, time.perf_counter() - t_probe)

    return {
        "name": entry.name,
        "kind": entry.kind,
        "preset": entry.preset,
        "data": "synthetic" if isinstance(entry.data, str) else entry.data.dataset,
        "batch": entry.batch,
        "steps": entry.steps,
        "warmup": entry.warmup,
        "precision": entry.precision,
        "attention": subject.attention,
        "attention_kernels": kernels,
        "compile": entry.compile,
        "optimizer": "AdamW (fused)" if optimizer.defaults.get("fused") else "AdamW",
        "device": _device_label(device),
        "status": "ok",
        "error": "",
        "params": params,
        "tokens_per_sample": tokens,
        "visible_tokens_per_sample": visible,
        "flops_per_sample": flops_per_sample,
        "step_time_ms": step_s * 1e3,
        "samples_per_s": samples_per_s,
        "tokens_per_s": samples_per_s * tokens,
        "tflops": flops_per_sample * samples_per_s / 1e12,
        "peak_mem_mb": peak_mb,
        "peak_mem_kind": peak_kind,
        "final_loss": statistics.fmean(losses),
        "baseline_loss": baseline,
        "baseline_kind": baseline_kind,
        "baselines": baseline_means,
        "probe": probe,
        "vs_hf": NO_PEER,
        "vs_hf_peak_mem": NO_PEER,
        "wall_s": time.perf_counter() - started,
    }


def _attention_kernels() -> dict[str, str]:
    """What ``attention="auto"`` chose per call shape in this process (empty when it chose nothing)."""
    try:
        from maeflow.nn.attention import attention_choices
    except ImportError:
        return {}
    return dict(attention_choices())


def _device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"
