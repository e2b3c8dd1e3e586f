"""Validating a bench config against the registries, running its entries one after another
(each in a fresh process by default), and pairing maeflow entries with their peers (e.g. the
image plugin's Hugging Face twin)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from maeflow.bench.config import BenchConfig, BenchEntry, DataSpec
from maeflow.bench.measure import NO_PEER, RESULT_FIELDS, run_entry
from maeflow.bench.subjects import subject_class

log = logging.getLogger(__name__)

# --- validation ---------------------------------------------------------------------------------


def _check_dataset(spec: DataSpec, what: str) -> None:
    from maeflow.data import builder_options, check_options
    from maeflow.plugins import registry

    builder = registry("dataset").get(spec.dataset)  # unknown name: ValueError listing the valid ones
    check_options(f"{what} dataset {spec.dataset!r}", spec.options, builder_options(builder))


def validate_entry(entry: BenchEntry, device: str) -> None:
    """Registry look-ups and a build on the meta device (no memory, no compute): an unknown
    preset, subject, dataset or model argument fails here, before anything runs."""
    import maeflow
    from maeflow.plugins import registry

    registry("model").get(entry.preset)
    subject = subject_class(entry.kind)  # unknown kind: ValueError listing the registered subjects
    if getattr(subject, "peer", False):
        if isinstance(entry.data, DataSpec):
            raise ValueError(f"{entry.kind} entries run on synthetic data only (the model alone is compared)")
        if entry.probe:
            raise ValueError(f"probes are for maeflow entries; {entry.kind} entries measure speed and loss")
    if isinstance(entry.data, DataSpec):
        _check_dataset(entry.data, "data:")
    if entry.probe:
        if entry.probe_source is None:
            raise ValueError("probe: true needs a labelled dataset: set data: {dataset: ...} or probe_data")
        _check_dataset(entry.probe_source, "probe_data:")
    if entry.precision == "fp16" and device == "cpu":
        raise ValueError("precision fp16 is for CUDA; use bf16 or fp32 on CPU")
    with torch.device("meta"):
        model = maeflow.create_model(entry.preset, **entry.args)
    check = getattr(subject, "check", None)
    if check is not None:
        check(model)


def validate(config: BenchConfig) -> None:
    """Check every entry; all problems are reported together in one ``ValueError``."""
    from maeflow.runtime import resolve_device

    problems = []
    try:
        device = resolve_device(config.device).type
    except ValueError as exc:
        problems.append(f"device: {exc}")
        device = "cuda"
    for entry in config.entries:
        try:
            validate_entry(entry, device)
        except ValueError as exc:
            problems.append(f"entry {entry.name!r}: {exc}")
    if problems:
        raise ValueError("invalid bench config, nothing was run:\n  " + "\n  ".join(problems))


# --- running ------------------------------------------------------------------------------------


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failed_result(entry: BenchEntry, error: BaseException | str) -> dict[str, Any]:
    """A result row for an entry that did not finish; every measured field says so."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    row = {field: "n/a: failed" for field in RESULT_FIELDS}
    row.update(
        name=entry.name, kind=entry.kind, preset=entry.preset,
        data="synthetic" if isinstance(entry.data, str) else entry.data.dataset,
        batch=entry.batch, steps=entry.steps, warmup=entry.warmup, precision=entry.precision,
        attention=entry.attention, compile=entry.compile, status="failed", error=_one_line(message),
    )  # fmt: skip
    return row


def _run_inprocess(entry: BenchEntry, config: BenchConfig) -> dict[str, Any]:
    try:
        return run_entry(entry, config.device, config.threads)
    except Exception as exc:  # reported as a failed row; the run goes on
        log.warning("entry %r failed: %s: %s", entry.name, type(exc).__name__, exc)
        return failed_result(entry, exc)
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _run_subprocess(entry: BenchEntry, config: BenchConfig, log_dir: Path) -> dict[str, Any]:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in entry.name)
    log_path = log_dir / f"{safe}.log"
    with tempfile.TemporaryDirectory(prefix="maeflow-bench-") as tmp:
        job, out = Path(tmp, "job.json"), Path(tmp, "result.json")
        job.write_text(json.dumps({"entry": entry.model_dump(mode="json"), "device": config.device,
                                   "threads": config.threads}))  # fmt: skip
        cmd = [sys.executable, "-m", "maeflow.bench.worker", str(job), str(out)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(log_path, "w") as logf:
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            try:
                rc = proc.wait(timeout=entry.timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return failed_result(entry, f"timed out after {entry.timeout_s:g} s (timeout_s)")
        if out.is_file():
            return json.loads(out.read_text())
    tail = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()][-3:]
    if rc < 0:
        sig = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
        why = f"process killed by {sig}" + (" (out of memory?)" if sig == "SIGKILL" else "")
    else:
        why = f"process exited with status {rc}"
    return failed_result(entry, why + (": " + " | ".join(tail) if tail else ""))


def attach_hf_ratios(results: list[dict[str, Any]], entries: list[BenchEntry]) -> None:
    """``vs_hf``: a maeflow entry's samples/s over its peer's — the entry of a peer subject
    (``peer = True``, e.g. the image plugin's Hugging Face twin) with the same preset, arguments,
    batch and precision, on synthetic inputs as a peer always is — measured in the same run;
    ``vs_hf_peak_mem`` likewise for peak memory."""

    def key(e: BenchEntry) -> str:
        return json.dumps([e.preset, e.args, e.batch, e.precision, str(e.data)], sort_keys=True, default=str)

    def is_peer(e: BenchEntry) -> bool:
        return bool(getattr(subject_class(e.kind), "peer", False))

    peers = {key(e): r for e, r in zip(entries, results, strict=True) if is_peer(e)}
    for e, r in zip(entries, results, strict=True):
        if is_peer(e):
            r["vs_hf"] = r["vs_hf_peak_mem"] = "n/a: is the peer"
            continue
        r.setdefault("vs_hf_peak_mem", NO_PEER)
        if r["status"] != "ok":
            continue
        peer = peers.get(key(e))
        if peer is None:
            r["vs_hf"] = r["vs_hf_peak_mem"] = NO_PEER
        elif peer["status"] != "ok":
            r["vs_hf"] = r["vs_hf_peak_mem"] = f"n/a: the {peer['kind']} peer failed"
        else:
            r["vs_hf"] = r["samples_per_s"] / peer["samples_per_s"]
            r["vs_hf_peak_mem"] = r["peak_mem_mb"] / peer["peak_mem_mb"]


def run_entries(config: BenchConfig, log_dir: Path, progress: bool = True) -> list[dict[str, Any]]:
    """Run every entry one after another; a failed entry becomes a failed row."""
    from tqdm import tqdm

    log_dir.mkdir(parents=True, exist_ok=True)
    results = []
    bar = tqdm(config.entries, desc="bench", unit="entry", disable=not progress, dynamic_ncols=True)
    for entry in bar:
        bar.set_postfix_str(entry.name)
        t0 = time.perf_counter()
        if config.isolation == "subprocess":
            result = _run_subprocess(entry, config, log_dir)
        else:
            result = _run_inprocess(entry, config)
        if result["status"] != "ok":
            result["wall_s"] = time.perf_counter() - t0
            bar.write(f"bench: entry {entry.name!r} failed: {result['error']}")
        results.append(result)
    attach_hf_ratios(results, config.entries)
    return results
