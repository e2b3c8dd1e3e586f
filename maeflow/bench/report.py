"""What a bench run writes: the machine and library description, the results as JSON, a
Markdown table, a PNG chart, and the table on the terminal."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from maeflow.utils.sysinfo import cpu_model


def _num(v: Any, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) and not isinstance(v, bool) else "—"


def _rate(v: Any) -> str:
    """Three significant figures without exponents: 3654, 894.6, 0.213."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "—"
    return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def _si(v: Any) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "—"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.3g}"


def _mem(v: Any) -> str:
    if not isinstance(v, (int, float)):
        return "—"
    return f"{v / 1024:.2f} GiB" if v >= 1024 else f"{v:.0f} MiB"


def _loss(r: dict[str, Any]) -> str:
    if not isinstance(r.get("final_loss"), (int, float)):
        return "—"
    return f"{r['final_loss']:.4f} / {r['baseline_loss']:.4f}"


def _probe(r: dict[str, Any]) -> str:
    p = r.get("probe")
    if isinstance(p, str):
        return "—" if r.get("status") != "ok" or p.startswith("n/a: not asked") else p
    if not isinstance(p, dict):
        return "—"
    parts = []
    for key, label in (("knn_top1", "kNN"), ("linear_top1", "lin")):
        if isinstance(p.get(key), (int, float)):
            rand = p.get(f"random_init_{key}")
            parts.append(f"{label} {p[key]:.1f}" + (f" ({rand:.1f})" if isinstance(rand, (int, float)) else ""))
    return ", ".join(parts) or "—"


def _ratio(v: Any) -> str:
    return f"{v:.2f}×" if isinstance(v, (int, float)) else "—"


COLUMNS: list[tuple[str, Any]] = [
    ("entry", lambda r: r["name"]),
    ("params", lambda r: _si(r.get("params"))),
    ("tokens (visible)", lambda r: f"{r['tokens_per_sample']} ({r['visible_tokens_per_sample']})"
     if isinstance(r.get("tokens_per_sample"), int) else "—"),
    ("batch", lambda r: str(r["batch"])),
    ("prec", lambda r: r["precision"] + (" +compile" if r.get("compile") is True else "")),
    ("GFLOP/sample", lambda r: _num(r.get("flops_per_sample", 0) / 1e9 if isinstance(r.get("flops_per_sample"),
                                    (int, float)) else None, ".3g")),
    ("step ms", lambda r: _rate(r.get("step_time_ms"))),
    ("samples/s", lambda r: _rate(r.get("samples_per_s"))),
    ("tokens/s", lambda r: _si(r.get("tokens_per_s"))),
    ("TFLOP/s", lambda r: _num(r.get("tflops"), ".3g")),
    ("peak mem", lambda r: _mem(r.get("peak_mem_mb"))),
    ("loss / baseline", _loss),
    ("probe top-1 (random init)", _probe),
    ("vs HF speed (mem)", lambda r: _ratio(r.get("vs_hf")) + (f" ({_ratio(r.get('vs_hf_peak_mem'))})"
                                 if isinstance(r.get("vs_hf_peak_mem"), (int, float)) else "")),
    ("status", lambda r: "ok" if r["status"] == "ok" else f"FAILED: {r['error']}"),
]  # fmt: skip


def table_rows(results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    headers = [h for h, _ in COLUMNS]
    return headers, [[str(fn(r)) for _, fn in COLUMNS] for r in results]


def markdown_table(results: list[dict[str, Any]]) -> str:
    headers, rows = table_rows(results)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(results: list[dict[str, Any]]) -> str:
    headers, rows = table_rows(results)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*row) for row in rows]
    return "\n".join(lines)


# --- machine, versions, commit ------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """No host name or user: the CPU, cores, memory, OS, Python and accelerator."""
    import psutil
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_physical": psutil.cpu_count(logical=False),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            device=torch.cuda.get_device_name(0),
            device_memory_gib=round(props.total_memory / 2**30, 1),
            device_count=torch.cuda.device_count(),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    else:
        info["device"] = "cpu"
    return info


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def library_versions() -> dict[str, str]:
    import maeflow

    out = {name: _version(name) for name in ("torch", "torchvision", "timm", "transformers", "pluggy", "numpy")}
    out["maeflow"] = maeflow.__version__
    xf = _version("xformers")
    if xf == "not installed":
        out["xformers"] = xf
    else:
        from maeflow.nn.attention import xformers_available

        ok, reason = xformers_available()
        out["xformers"] = f"{xf} ({'kernels usable' if ok else 'kernels unusable: ' + reason})"
    return out


def git_commit(cwd: str | Path | None = None) -> str:
    """``<sha>`` or ``<sha>+dirty`` of the checkout maeflow runs from; ``unknown`` outside git."""
    where = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True,
                             timeout=10).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


# --- files --------------------------------------------------------------------------------------


def run_record(config_raw: dict[str, Any], config_path: str | None, results: list[dict[str, Any]],
               wall_s: float, overrides: dict[str, Any] | None = None, note: str = "") -> dict[str, Any]:  # fmt: skip
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "note": note,
        "config_path": config_path,
        "overrides": overrides or {},
        "config": config_raw,
        "machine": machine_info(),
        "versions": library_versions(),
        "git_commit": git_commit(),
        "wall_s": wall_s,
        "results": results,
    }


def markdown_report(record: dict[str, Any]) -> str:
    m, v = record["machine"], record["versions"]
    device = m["device"] if m["device"] != "cpu" else f"CPU only ({m['cpu']})"
    lines = [
        f"# maeflow bench — {record['config_path'] or 'config'}",
        "",
        f"- date: {record['date']}; git commit: `{record['git_commit']}`; wall time {record['wall_s']:.0f} s",
        f"- machine: {m['cpu']}, {m['cpu_cores_logical']} logical cores"
        f" ({m.get('cpu_affinity')} usable), {m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}",
        f"- device: {device}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        *([f"- note: {record['note']}"] if record.get("note") else []),
        "",
        markdown_table(record["results"]),
        "",
        "Step time is the median full training step (forward, backward, AdamW step) after the warm-up"
        " steps; FLOPs are forward+backward per sample counted with `torch.utils.flop_counter`; TFLOP/s ="
        " FLOPs/sample × samples/s. Peak memory is the CUDA allocator's maximum on GPU, the process's peak"
        " RSS on CPU. Loss is the mean over the last steps next to the trivial baseline on the same batches"
        " (the better of two constant predictions — zeros, and the batch's mean masked target, e.g. the mean"
        " point group — or the model's own `baseline_pred`). Entries on synthetic inputs (random tensors,"
        " nothing to learn) measure speed; their loss stays at the baseline."
        " Probe: kNN / linear-probe top-1 after this short pretraining, in brackets the same encoder at its"
        " random initial weights. vs HF: samples/s over the peer entry (a plugin's reference implementation,"
        " e.g. Hugging Face's MAE) with the same preset, batch and precision, in the same run (in brackets:"
        " peak memory over its peak memory).",
        "",
    ]
    return "\n".join(lines)


def write_chart(results: list[dict[str, Any]], path: Path) -> Path:
    """Two panels: samples/s per entry, and final loss over the trivial baseline per entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["name"] for r in results]
    ok = [r["status"] == "ok" for r in results]
    n = len(results)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 1.2 + 0.45 * n), constrained_layout=True)
    ys = list(range(n))
    speed = [r["samples_per_s"] if o else 0.0 for r, o in zip(results, ok, strict=True)]
    ax1.barh(ys, speed, color=["tab:blue" if r["kind"] == "maeflow" else "tab:orange" for r in results])
    for y, o, s in zip(ys, ok, speed, strict=True):
        ax1.text(s, y, f" {s:.1f}" if o else " failed", va="center", fontsize=8)
    ax1.set_yticks(ys, names)
    ax1.invert_yaxis()
    ax1.set_xlabel("samples/s (median training step)")
    if any(s > 0 for s in speed) and max(speed) / max(min(s for s in speed if s > 0), 1e-12) > 100:
        ax1.set_xscale("log")
    # losses of different modalities live on different scales: show each against its own baseline
    ratio = [r["final_loss"] / r["baseline_loss"] if o and r["baseline_loss"] > 0 else 0.0
             for r, o in zip(results, ok, strict=True)]  # fmt: skip
    ax2.barh(ys, ratio, color=["tab:green" if 0 < q < 1 else "tab:red" for q in ratio])
    for y, o, q, r in zip(ys, ok, ratio, results, strict=True):
        label = f" {r['final_loss']:.3g} / {r['baseline_loss']:.3g}" if o else " failed"
        ax2.text(q, y, label, va="center", fontsize=8)
    ax2.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax2.set_yticks(ys, names)
    ax2.invert_yaxis()
    ax2.set_xlabel("final loss / trivial baseline (< 1: learned)")
    ax2.set_xlim(0, max([1.3, *(q * 1.35 for q in ratio)]))
    fig.suptitle("maeflow bench")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(record: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """``results.json``, ``results.md`` and ``results.png`` in ``out_dir``."""
    from maeflow.utils.io import atomic_write

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "md": out_dir / "results.md", "png": out_dir / "results.png"}
    atomic_write(paths["json"], json.dumps(record, indent=2, default=str).encode())
    atomic_write(paths["md"], markdown_report(record).encode())
    write_chart(record["results"], paths["png"])
    return paths
