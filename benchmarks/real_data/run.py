#!/usr/bin/env python
"""The real-data benchmark: pretrain each modality on its real set, then report the final loss
next to the trivial baseline and kNN / linear / fine-tune top-1 of the pretrained encoder vs a
random init, over seeds (mean, spread).

    python benchmarks/real_data/build.py                       # once: the datasets (see README.md)
    python benchmarks/real_data/run.py                         # 4 modalities x seeds 0 1 2
    python benchmarks/real_data/run.py video audio --seeds 0 --tag video_audio_s0

Each (modality, seed) is ``maeflow train benchmarks/real_data/configs/<modality>.yaml
run.seed=S run.output_dir=<runs>/<modality>/seed<S> run.threads=1`` (one subprocess; a run
whose final evaluation is already in its ``metrics.jsonl`` is reused unless ``--retrain``).
Then, per run:

- ``final_loss``: the mean training loss of the last ``--last-records`` logged steps;
- ``trivial``: the loss of the best constant prediction on pretraining batches of the same data
  with the trained model's own target normalizer and masks — predict zero (for per-patch
  normalized targets), the batch's mean target, or the model's ``baseline_pred`` (point
  groups) — and ``model_loss``, the trained model's loss on those same batches;
- the trainer's final evaluation: kNN / linear / fine-tune top-1, pretrained and random init;
  with ``--reevaluate``, ``maeflow eval RUN --compare-random-init`` under the configs' current
  ``eval`` settings instead (a new probe or fine-tuning protocol on the same checkpoints).

Written to ``benchmarks/results/real_data_<date>[_<tag>].{json,md}`` with the machine, versions
and commit. Needs torch (the shared maeflow environment); the datasets must be built first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODALITIES = ("image", "video", "audio", "pointcloud")
PROBES = ("knn", "linear", "finetune")
DEFAULT_SEEDS = (0, 1, 2)


def portable(path: Path | str) -> str:
    """A path for the report: relative to the repository when inside it, ``~/...`` under the
    home folder (no machine-specific absolute paths in committed results)."""
    path = Path(path)
    for base, prefix in ((ROOT, ""), (Path.home(), "~/")):
        try:
            return prefix + str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def default_data_root() -> Path:
    env = os.environ.get("MAEFLOW_REAL_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "maeflow" / "real_data"


# ---------------------------------------------------------------------------------------------
# reading a run


def read_metrics(path: Path) -> list[dict]:
    records = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a killed run
    return records


def final_eval(records: Sequence[dict]) -> dict | None:
    evals = [r for r in records if r.get("type") == "eval" and r.get("final")]
    return evals[-1] if evals else None


def eval_json_as_record(result: dict) -> dict:
    """A ``maeflow eval --compare-random-init --json`` result in the keys of the trainer's final
    evaluation record (``knn_top1``, ``random_knn_top1``, ...)."""
    out = {}
    for prefix, key in (("", "pretrained"), ("random_", "random_init")):
        for p in PROBES:
            value = (result.get(key) or {}).get(f"{p}_top1")
            if value is not None:
                out[f"{prefix}{p}_top1"] = value
    return out


def final_train_loss(records: Sequence[dict], last: int = 5) -> float | None:
    losses = [float(r["loss"]) for r in records if r.get("type") == "train" and "loss" in r]
    return statistics.fmean(losses[-last:]) if losses else None


def summarize(values: Sequence[float | None]) -> dict | None:
    """mean, sample std, min, max and n of the values that exist (None when none do)."""
    v = [float(x) for x in values if x is not None]
    if not v:
        return None
    return {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0,
            "min": min(v), "max": max(v), "n": len(v)}  # fmt: skip


def run_row(records: Sequence[dict], baseline: dict | None, last: int = 5, evaluation: dict | None = None) -> dict:
    """One run's numbers: losses, the trivial baseline and the probes (pretrained / random):
    the trainer's final evaluation, or ``evaluation`` (a ``maeflow eval --json`` result) when given."""
    ev = (final_eval(records) or {}) if evaluation is None else eval_json_as_record(evaluation)
    row = {"final_loss": final_train_loss(records, last), "steps": max((r.get("step", 0) for r in records), default=0)}
    if baseline:
        row.update(baseline)
        if row["final_loss"] is not None and baseline.get("trivial"):
            row["loss_ratio"] = row["final_loss"] / baseline["trivial"]
    for p in PROBES:
        row[f"{p}_pre"] = ev.get(f"{p}_top1")
        row[f"{p}_rand"] = ev.get(f"random_{p}_top1")
        if row[f"{p}_pre"] is not None and row[f"{p}_rand"] is not None:
            row[f"{p}_gain"] = row[f"{p}_pre"] - row[f"{p}_rand"]
    return row


def checks(summary: dict) -> dict:
    """Issue 13's criteria, read off one modality's summary (None where a number is missing):
    fine-tune gain >= 5 points with the pretrained runs' range above random init's (min > max)
    and the mean +- std intervals apart; linear probe mean above random's; loss <= 0.8 x trivial."""
    def get(key, stat="mean"):
        return (summary.get(key) or {}).get(stat)

    out: dict = {}
    pre, rnd = summary.get("finetune_pre"), summary.get("finetune_rand")
    if pre and rnd:
        out["finetune_gain_ge_5"] = get("finetune_gain") >= 5.0
        out["finetune_ranges_apart"] = pre["min"] > rnd["max"]
        out["finetune_std_apart"] = pre["mean"] - pre["std"] > rnd["mean"] + rnd["std"]
    if get("linear_pre") is not None and get("linear_rand") is not None:
        out["linear_wins"] = get("linear_pre") > get("linear_rand")
    if get("loss_ratio") is not None:
        out["loss_le_0.8_trivial"] = get("loss_ratio") <= 0.8
    return out


def finetune_protocol(config: Path, overrides: Sequence[str] = ()) -> dict:
    """The config's fine-tuning settings (``eval.finetune_*``, after ``--set`` overrides) for the report."""
    from maeflow.config import load_config

    ev = load_config(config, list(overrides)).eval
    return {"label_fraction": ev.finetune_label_fraction, "epochs": ev.finetune_epochs, "lr": ev.finetune_lr,
            "layer_decay": ev.finetune_layer_decay}  # fmt: skip


def eval_flags(config: Path, overrides: Sequence[str] = ()) -> list[str]:
    """``maeflow eval`` options that reproduce the config's ``eval`` section (after ``--set``
    overrides): what re-evaluating a run under the benchmark's current protocol passes. The
    dataset and its options stay the run's own (its checkpoint's config)."""
    from maeflow.config import load_config

    ev = load_config(config, list(overrides)).eval
    flags = ["--train-split", ev.train_split, "--test-split", ev.test_split,
             "--knn-k", str(ev.knn_k), "--linear-epochs", str(ev.linear_epochs), "--batch-size", str(ev.batch_size),
             "--finetune-epochs", str(ev.finetune_epochs), "--finetune-lr", repr(ev.finetune_lr),
             "--finetune-batch-size", str(ev.finetune_batch_size),
             "--finetune-label-fraction", repr(ev.finetune_label_fraction)]  # fmt: skip
    if ev.finetune_layer_decay is not None:
        flags += ["--finetune-layer-decay", repr(ev.finetune_layer_decay)]
    return flags


def aggregate(rows: Sequence[dict]) -> dict:
    keys = sorted({k for r in rows for k, v in r.items() if isinstance(v, (int, float))})
    return {k: summarize([r.get(k) for r in rows]) for k in keys}


# ---------------------------------------------------------------------------------------------
# the trivial baseline of a trained run


def trivial_baseline(run_dir: Path, batches: int = 4, batch_size: int = 64, seed: int = 1234) -> dict:
    """Losses of the trained model and of constant predictions on ``batches`` pretraining
    batches (the training split, its augmentation, fresh masks), through the model's own target
    normalizer and loss (:func:`maeflow.eval.baseline.reconstruction_vs_trivial`, what
    ``maeflow eval`` prints). ``trivial`` is the lowest constant-prediction loss."""
    import maeflow
    from maeflow.checkpoint import read_file
    from maeflow.cli.eval import resolve_checkpoint
    from maeflow.data import build_dataset
    from maeflow.eval.baseline import reconstruction_vs_trivial

    raw = read_file(resolve_checkpoint(run_dir))
    model, _ = maeflow.model_from_checkpoint(raw)
    data = raw["config"]["data"]
    ds = build_dataset(data["name"], data.get("split", "train"), model=model, **(data.get("options") or {}))
    res = reconstruction_vs_trivial(model, ds, batches=batches, batch_size=batch_size, seed=seed)
    out = {"model_loss": res["model_loss"], "trivial": res["trivial"], "baseline_batches": res["samples"]}
    out.update({f"baseline_{k.replace(' ', '_')}": v for k, v in res.items() if k in ("zeros", "mean target")})
    if "baseline_pred" in res:
        out["baseline_pred"] = res["baseline_pred"]
    return out


# ---------------------------------------------------------------------------------------------
# how hard is the task: kNN on the raw inputs


def raw_input_knn(config: Path, k: int = 20) -> dict:
    """Top-1 of a cosine kNN on the standardized raw inputs (no model) of the config's data, the
    train split against the test split, augmentation off: what a probe of any encoder should beat.
    Point clouds (no fixed order) use each cloud's sorted distances to its centroid instead."""
    import torch

    import maeflow
    from maeflow.config import load_config
    from maeflow.data import build_dataset

    cfg = load_config(config)
    model = maeflow.create_model(cfg.model.name, **cfg.model.args)
    opts = {**cfg.data.options, "augment": False}

    def features(split):
        ds = build_dataset(cfg.data.name, split, model=model, **opts)
        xs, ys = zip(*(ds[i] for i in range(len(ds))), strict=True)
        x = torch.stack([torch.as_tensor(v).float() for v in xs])
        if x.ndim == 3 and x.shape[-1] == 3:  # (N, points, 3)
            x = torch.sort((x - x.mean(1, keepdim=True)).norm(dim=-1), dim=1).values
        return x.flatten(1), torch.tensor(ys)

    xtr, ytr = features("train")
    xte, yte = features("test")
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    a = torch.nn.functional.normalize((xtr - mu) / sd, dim=1)
    b = torch.nn.functional.normalize((xte - mu) / sd, dim=1)
    idx = (b @ a.T).topk(min(k, len(a)), dim=1).indices
    classes = int(max(ytr.max(), yte.max())) + 1
    votes = torch.zeros(len(b), classes).scatter_add_(1, ytr[idx], torch.ones(idx.shape))
    return {"raw_knn": float((votes.argmax(1) == yte).float().mean() * 100), "chance": 100.0 / classes,
            "raw_knn_k": k}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# running


def _maeflow(args: Sequence[str], log_path: Path) -> float:
    """One ``python -m maeflow ...`` subprocess with this checkout's packages first on the path;
    returns its wall time (s). Its output goes to ``log_path``."""
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "plugins")]
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    cmd = [sys.executable, "-m", "maeflow", *args]
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}); see {log_path}")
    return time.perf_counter() - t0


def train(config: Path, seed: int, out_dir: Path, overrides: Sequence[str], log_path: Path) -> float:
    """One ``maeflow train`` subprocess; returns its wall time (s). Its output goes to ``log_path``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return _maeflow(["train", str(config), f"run.seed={seed}", f"run.output_dir={out_dir}", "run.threads=1",
                     *overrides], log_path)  # fmt: skip


def reevaluate(config: Path, run_dir: Path, overrides: Sequence[str]) -> dict:
    """The run's final evaluation again, by ``maeflow eval RUN --compare-random-init`` under the
    config's current ``eval`` settings (its seed and random twin are the run's own, so an unchanged
    protocol gives the trainer's numbers); written to ``RUN/real_data_eval.json`` and returned."""
    out = run_dir / "real_data_eval.json"
    _maeflow(["eval", str(run_dir), "--compare-random-init", "--threads", "1", "--no-progress",
              "--baseline-batches", "0", *eval_flags(config, overrides), "--json", str(out)],
             run_dir / "real_data_eval.log")  # fmt: skip
    return json.loads(out.read_text())


def environment() -> dict:
    import numpy
    import torch

    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    cpu = None
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))  # fmt: skip
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    for mod in ("torchaudio", "torchvision", "av", "soundfile", "PIL"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing optional package is just not listed
            pass
    status = git("status", "--porcelain")
    return {
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_start": list(os.getloadavg())},  # fmt: skip
        "versions": versions,
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


def data_summary(root: Path, modality: str) -> dict | None:
    try:
        m = json.loads((root / modality / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return {k: m.get(k) for k in ("task", "split_policy", "file_format", "counts", "total_files", "bytes", "options",
                                  "build_version")}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# report


def _pm(s: dict | None, digits: int = 1) -> str:
    if not s:
        return "–"
    if s["n"] == 1:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def to_markdown(result: dict) -> str:
    env = result["environment"]
    seeds = result["seeds"]
    lines = [
        f"# Real-data benchmark ({result['date']})",
        "",
        f"`python benchmarks/real_data/run.py {' '.join(result['argv'])}` — machine: {env['machine']['cpu']}, "
        f"{env['machine']['cores']} cores, load average at start {env['machine']['loadavg_start'][0]:.1f}; "
        f"torch {env['versions'].get('torch')}; commit {(env['commit'] or '?')[:10]}"
        f"{' (dirty)' if env['dirty'] else ''}.",
        f"Seeds {', '.join(map(str, seeds))}: mean ± sample std over seeds (a single seed: its value). "
        "Loss: the mean of the last logged training steps; trivial: the best constant prediction (zero, mean "
        "target, or the model's `baseline_pred`) on pretraining batches through the trained model's own target "
        "normalizer. Top-1 in %, pretrained vs random init (the trainer's twin under seed + 1). Raw-input kNN: "
        "cosine kNN (k=20) on the standardized inputs, no model (point clouds: sorted radii), what a probe "
        "should beat.",
        *(["The probe and fine-tune numbers are a second evaluation of each run's last checkpoint (`--reevaluate`: "
            "`maeflow eval RUN --compare-random-init` under the configs' current `eval` settings, the run's own seed "
            "and twin), not the trainer's final evaluation."] if result.get("reevaluated") else []),
        "",
        "| modality | loss end / trivial (ratio) | kNN pre vs random | linear pre vs random | fine-tune pre vs random "
        "| fine-tune gain | raw-input kNN (chance) | train wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mod, res in result["modalities"].items():
        a = res["summary"]
        loss = f"{_pm(a.get('final_loss'), 3)} / {_pm(a.get('trivial'), 3)} ({_pm(a.get('loss_ratio'), 2)})"
        probes = [f"{_pm(a.get(f'{p}_pre'))} vs {_pm(a.get(f'{p}_rand'))}" for p in PROBES]
        ref = res.get("reference")
        raw = f"{ref['raw_knn']:.1f} ({ref['chance']:.1f})" if ref else "–"
        lines.append(f"| {mod} | {loss} | {' | '.join(probes)} | {_pm(a.get('finetune_gain'))} | {raw} "
                     f"| {_pm(a.get('wall_s'), 0)} |")  # fmt: skip
    lines += ["", "Fine-tuning protocol and issue 13's criteria (computed from the runs above; a range is min-max "
              "over seeds):", "", "| modality | fine-tune labels, epochs | fine-tune pre range | random range "
              "| gain >= 5 | ranges apart | mean ± std apart | linear wins | loss <= 0.8 trivial |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for mod, res in result["modalities"].items():
        a, c, ft = res["summary"], res.get("checks") or {}, res.get("finetune") or {}

        def yes(key, c=c):
            return "–" if c.get(key) is None else ("yes" if c[key] else "**no**")

        def rng(key, a=a):
            return f"{a[key]['min']:.1f}–{a[key]['max']:.1f}" if a.get(key) else "–"

        labels = f"{ft.get('label_fraction', 1.0):.0%}, {ft.get('epochs', '?')}"
        if ft.get("layer_decay") is not None:
            labels += f", layer decay {ft['layer_decay']:g}"
        lines.append(f"| {mod} | {labels} | {rng('finetune_pre')} | {rng('finetune_rand')} | "
                     + " | ".join(yes(k) for k in ("finetune_gain_ge_5", "finetune_ranges_apart", "finetune_std_apart",
                                                   "linear_wins", "loss_le_0.8_trivial")) + " |")  # fmt: skip
    lines += ["", "Per run:", "", "| modality | seed | loss end | model loss / trivial on fresh batches "
              "| kNN | linear | fine-tune | wall (s) |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for mod, res in result["modalities"].items():
        for seed, r in res["runs"].items():
            def f(k, d=1, r=r):
                return "–" if r.get(k) is None else f"{r[k]:.{d}f}"
            lines.append(f"| {mod} | {seed} | {f('final_loss', 4)} | {f('model_loss', 4)} / {f('trivial', 4)} | "
                         + " | ".join(f"{f(p + '_pre')} vs {f(p + '_rand')}" for p in PROBES)
                         + f" | {f('wall_s', 0)} |")  # fmt: skip
    lines += ["", "Data (built by `benchmarks/real_data/build.py`; sources and licenses in its README):", ""]
    for mod, res in result["modalities"].items():
        d = res.get("data") or {}
        counts = d.get("counts") or {}
        sizes = ", ".join(f"{s} {sum(c.values())}" for s, c in counts.items())
        lines.append(f"- **{mod}**: {d.get('task', '?')}; {sizes}; {d.get('split_policy', '')}.")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("modalities", nargs="*", metavar="MODALITY", help=f"any of {', '.join(MODALITIES)} (default: all)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "real_data", help="where the runs go")
    p.add_argument("--data-root", type=Path, default=None, help="built datasets (default: $MAEFLOW_REAL_DATA or "
                   "~/.cache/maeflow/real_data)")  # fmt: skip
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results", help="where the report goes")
    p.add_argument("--tag", default="", help="suffix of the report's file names")
    p.add_argument("--retrain", action="store_true", help="train again even when a run has its final evaluation")
    p.add_argument("--collect-only", action="store_true", help="only read existing runs")
    p.add_argument("--reevaluate", action="store_true",
                   help="evaluate every run again with `maeflow eval` under the configs' current eval settings "
                        "(a changed probe or fine-tuning protocol without pretraining again); the report uses "
                        "those numbers")  # fmt: skip
    p.add_argument("--last-records", type=int, default=5, help="training records averaged for the final loss")
    p.add_argument("--baseline-batches", type=int, default=4)
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (each is single-threaded)")
    p.add_argument("--no-raw-knn", action="store_true", help="skip the raw-input kNN reference (once per modality)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="extra config overrides for every run, e.g. train.epochs=2")  # fmt: skip
    args = p.parse_args(argv)
    unknown = sorted(set(args.modalities) - set(MODALITIES))
    if unknown:
        p.error(f"unknown modality {', '.join(unknown)}; choose from {', '.join(MODALITIES)}")
    data_root = (args.data_root or default_data_root()).expanduser().resolve()
    os.environ["MAEFLOW_REAL_DATA"] = str(data_root)  # the configs' ${MAEFLOW_REAL_DATA:-...}
    missing = [m for m in args.modalities or MODALITIES if not (data_root / m / "manifest.json").is_file()]
    if missing:
        p.error(f"not built in {data_root}: {', '.join(missing)} (run benchmarks/real_data/build.py first)")
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    result = {"date": dt.date.today().isoformat(), "argv": argv, "seeds": args.seeds, "data_root": portable(data_root),
              "reevaluated": args.reevaluate, "environment": environment(), "modalities": {}}  # fmt: skip
    # every (modality, seed, run dir), video (the longest) first: --jobs of them at once
    runs_all = sorted(((mod, seed, (args.runs / mod / f"seed{seed}").resolve()) for mod in args.modalities or MODALITIES
                       for seed in args.seeds), key=lambda job: job[0] != "video")  # fmt: skip

    def trained(out: Path) -> bool:
        return (out / "metrics.jsonl").is_file() and final_eval(read_metrics(out / "metrics.jsonl")) is not None

    todo = [] if args.collect_only else [job for job in runs_all if args.retrain or not trained(job[2])]

    def train_one(job: tuple[str, int, Path]) -> None:
        mod, seed, out = job
        print(f"[{time.strftime('%H:%M:%S')}] {mod} seed {seed}: training -> {out}", flush=True)
        wall = train(HERE / "configs" / f"{mod}.yaml", seed, out, args.set, out.parent / f"seed{seed}.log")
        (out / "real_data_wall.json").write_text(json.dumps({"wall_s": wall}) + "\n")
        print(f"[{time.strftime('%H:%M:%S')}] {mod} seed {seed}: trained in {wall:.0f} s", flush=True)

    # each run is one single-threaded subprocess
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(train_one, todo))

    evaluations: dict[tuple[str, int], dict] = {}
    if args.reevaluate:
        def evaluate_one(job: tuple[str, int, Path]) -> None:
            mod, seed, out = job
            print(f"[{time.strftime('%H:%M:%S')}] {mod} seed {seed}: evaluating again -> {out}", flush=True)
            evaluations[mod, seed] = reevaluate(HERE / "configs" / f"{mod}.yaml", out, args.set)

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(evaluate_one, [job for job in runs_all if (job[2] / "metrics.jsonl").is_file()]))

    for mod in args.modalities or MODALITIES:
        config = HERE / "configs" / f"{mod}.yaml"
        runs = {}
        for seed in args.seeds:
            out = (args.runs / mod / f"seed{seed}").resolve()
            wall = None
            if (out / "real_data_wall.json").is_file():  # its recorded wall time
                wall = json.loads((out / "real_data_wall.json").read_text()).get("wall_s")
            if not (out / "metrics.jsonl").is_file():
                print(f"{mod} seed {seed}: no run in {out}", file=sys.stderr)
                continue
            records = read_metrics(out / "metrics.jsonl")
            row = run_row(records, trivial_baseline(out, batches=args.baseline_batches), args.last_records,
                          evaluations.get((mod, seed)))  # fmt: skip
            row["evaluated_by"] = "maeflow eval (again)" if (mod, seed) in evaluations else "trainer"
            row["wall_s"] = wall
            row["run_dir"] = portable(out)
            runs[str(seed)] = row
            print(f"[{time.strftime('%H:%M:%S')}] {mod} seed {seed}: loss {row['final_loss']:.4f} / trivial "
                  f"{row.get('trivial', float('nan')):.4f}; " + ", ".join(
                      f"{p} {row.get(p + '_pre')} vs {row.get(p + '_rand')}" for p in PROBES), flush=True)  # fmt: skip
        reference = None if args.no_raw_knn else raw_input_knn(config)
        summary = aggregate(list(runs.values()))
        result["modalities"][mod] = {"config": str(config.relative_to(ROOT)), "runs": runs, "reference": reference,
                                     "summary": summary, "checks": checks(summary),
                                     "finetune": finetune_protocol(config, args.set),
                                     "data": data_summary(data_root, mod)}
    result["environment"]["machine"]["loadavg_end"] = list(os.getloadavg())
    args.results.mkdir(parents=True, exist_ok=True)
    stem = f"real_data_{result['date']}{'_' + args.tag if args.tag else ''}"
    (args.results / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.results / f"{stem}.md").write_text(to_markdown(result))
    print(to_markdown(result))
    print(f"wrote {args.results / stem}.{{json,md}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
