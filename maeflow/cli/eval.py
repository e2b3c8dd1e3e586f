"""``maeflow eval``: kNN and linear-probe top-1 of a checkpoint's frozen encoder, and with
``--finetune-epochs N`` the top-1 after fine-tuning it end to end.

    maeflow eval runs/demo                                  # the run's latest checkpoint, its eval data
    maeflow eval model.pt --dataset digits --compare-random-init --json probes.json
    maeflow eval runs/demo --finetune-epochs 20 --compare-random-init --threads 4
    maeflow eval model.pt --dataset image_folder --data root=/data/imagenet img_size=224

CHECKPOINT is a maeflow checkpoint file or a run directory (its ``checkpoints/last.pt``, else
the newest ``*.pt``). Without ``--dataset``, the dataset and its options come from the config
stored in a trainer checkpoint (``eval.dataset``/``eval.options``, else ``data.name``/
``data.options``). The evaluation is the trainer's own
(:class:`maeflow.eval.probe.ProbeEvaluator`): augmentation is always off for probes;
fine-tuning trains on the train split with the dataset's augmentation default for it
(``--data augment=false`` turns it off) and is scored on the un-augmented test split, with a
progress bar (``--no-progress``: none). ``--threads`` defaults to the run's ``run.threads``.
For a trainer checkpoint it first prints the reconstruction loss next to the trivial baseline on
pretraining batches (:func:`maeflow.eval.baseline.reconstruction_vs_trivial`; ``--baseline-batches
0``: skip). See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

_STEP = re.compile(r"(\d+)")


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="a maeflow checkpoint file, or a run directory (uses its latest checkpoint)")
    parser.add_argument("--dataset", help="registered labeled dataset (default: from the checkpoint's config)")
    parser.add_argument("--data", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="dataset options, e.g. root=/data/imagenet img_size=224")  # fmt: skip
    parser.add_argument("--compare-random-init", action="store_true",
                        help="also probe a randomly initialized encoder of the same model (the baseline)")  # fmt: skip
    parser.add_argument("--knn-k", type=int, help="neighbours for the kNN probe (default 20)")
    parser.add_argument("--linear-epochs", type=int, help="epochs of the linear probe (default 100)")
    parser.add_argument("--batch-size", type=int, help="batch size for feature extraction and the probe (default 256)")
    parser.add_argument("--train-split", help="split the probes are fitted on (default train)")
    parser.add_argument("--test-split", help="split the probes are scored on (default test)")
    parser.add_argument("--pool", choices=("auto", "cls", "mean"),
                        help="pooled feature: cls token (auto, when the encoder has one) or token mean")  # fmt: skip
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers for feature extraction")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for PyTorch ops (default: the run's run.threads, else PyTorch's default)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="a progress bar during fine-tuning (one log line per epoch when not on a terminal)")
    parser.add_argument("--finetune-epochs", type=int, metavar="N",
                        help="also fine-tune the encoder end to end for N epochs (default: the checkpoint config's "
                             "eval.finetune_epochs, else 0: off)")  # fmt: skip
    parser.add_argument("--finetune-lr", type=float, help="AdamW peak lr of fine-tuning (default 1e-3)")
    parser.add_argument("--finetune-batch-size", type=int, help="batch size of fine-tuning (default 64)")
    parser.add_argument("--finetune-label-fraction", type=float, metavar="F",
                        help="fine-tune on this fraction of each class's training labels (default: the config's "
                             "eval.finetune_label_fraction, else 1)")  # fmt: skip
    parser.add_argument("--finetune-layer-decay", type=float, metavar="D",
                        help="layer-wise lr decay of fine-tuning, e.g. 0.75 (default: the config's "
                             "eval.finetune_layer_decay, else none)")  # fmt: skip
    parser.add_argument("--baseline-batches", type=int, default=4, metavar="N",
                        help="batches of the pretraining data for the loss vs trivial-baseline line (0: skip)")
    parser.add_argument("--seed", type=int,
                        help="seed of the linear probe and fine-tuning (default: the run's run.seed, else 0); the "
                             "random-init twin is built under seed + 1, as the trainer does")  # fmt: skip
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, or the latest checkpoint of a run directory: ``last.pt`` in
    ``checkpoints/`` or the directory itself, else the ``*.pt`` with the highest step number
    (newest modification time among equals)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise FileNotFoundError(f"checkpoint or run directory not found: {path}")
    folders = [path / "checkpoints", path]
    for folder in folders:
        if (folder / "last.pt").is_file():
            return folder / "last.pt"
    for folder in folders:
        files = [p for p in folder.glob("*.pt") if p.is_file()] if folder.is_dir() else []
        if files:
            return max(files, key=lambda p: (_step_of(p), p.stat().st_mtime))
    raise FileNotFoundError(f"no checkpoint (*.pt) in {path} or {path / 'checkpoints'}")


def _step_of(path: Path) -> int:
    numbers = _STEP.findall(path.stem)
    return int(numbers[-1]) if numbers else -1


def dataset_from_config(config: dict[str, Any] | None) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """``(dataset name, options, eval settings)`` stored in a trainer checkpoint's config."""
    if not isinstance(config, dict):
        return None, {}, {}
    data = config.get("data") or {}
    ev = config.get("eval") or {}
    name = ev.get("dataset") or data.get("name")
    options: dict[str, Any] = {}
    if name is not None and name == data.get("name"):
        options.update(data.get("options") or {})  # same dataset as pretraining: its root, sizes, ...
    options.update(ev.get("options") or {})
    return name, options, ev


def _stored_seed(config: dict[str, Any] | None) -> int | None:
    """``run.seed`` of a trainer checkpoint's config: probing with it (and the twin with it + 1)
    reproduces the numbers the trainer logged at its final evaluation."""
    run = config.get("run") if isinstance(config, dict) else None
    seed = run.get("seed") if isinstance(run, dict) else None
    return int(seed) if isinstance(seed, int) else None


def _stored_threads(config: dict[str, Any] | None) -> int | None:
    """``run.threads`` of a trainer checkpoint's config (None when unset or absent)."""
    run = config.get("run") if isinstance(config, dict) else None
    threads = run.get("threads") if isinstance(run, dict) else None
    return threads if isinstance(threads, int) and not isinstance(threads, bool) and threads > 0 else None


def _first(*values: Any) -> Any:
    return next(v for v in values if v is not None)


def _eval_settings(args, stored: dict[str, Any]):
    """The ``eval`` section of the run config (:class:`maeflow.config.EvalConfig`): the
    checkpoint's stored settings, then the command line's. A command-line evaluation is final."""
    from maeflow._configio import validate
    from maeflow.config import EvalConfig

    values = {k: v for k, v in stored.items() if k in EvalConfig.model_fields and k not in ("dataset", "options")}
    given = {
        "train_split": args.train_split, "test_split": args.test_split, "batch_size": args.batch_size,
        "knn_k": args.knn_k, "linear_epochs": args.linear_epochs, "finetune_epochs": args.finetune_epochs,
        "finetune_lr": args.finetune_lr, "finetune_batch_size": args.finetune_batch_size,
        "finetune_label_fraction": args.finetune_label_fraction, "finetune_layer_decay": args.finetune_layer_decay,
    }  # fmt: skip
    values.update({k: v for k, v in given.items() if v is not None})
    values.update(final=True, compare_random_init=bool(args.compare_random_init), every_epochs=0)
    if values.get("finetune_epochs", 0) < 0:
        raise ValueError(f"--finetune-epochs must be >= 0, got {values['finetune_epochs']}")
    try:
        return validate(EvalConfig, values)
    except ValueError as exc:
        raise ValueError(f"invalid evaluation settings: {exc}") from None


def run(args) -> int:
    import maeflow
    from maeflow.checkpoint import read_file
    from maeflow.cli.common import parse_overrides
    from maeflow.eval.probe import ProbeEvaluator
    from maeflow.runtime import resolve_device, set_threads

    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    path = resolve_checkpoint(args.checkpoint)
    raw = read_file(path)
    threads = args.threads if args.threads is not None else _stored_threads(raw.get("config"))
    set_threads(threads)  # None: PyTorch's default
    model, result = maeflow.model_from_checkpoint(raw)
    name, options, ev = dataset_from_config(raw.get("config"))
    if args.dataset:
        if args.dataset != name:
            options = {}  # the stored options belong to another dataset
        name = args.dataset
    if not name:
        raise ValueError(f"{path} does not say which dataset to probe on; pass --dataset NAME (e.g. digits)")
    options.update(parse_overrides(args.data))
    settings = _eval_settings(args, ev)
    pool = _first(args.pool, ev.get("pool"), "auto")
    device = resolve_device(args.device)
    seed = _first(args.seed, _stored_seed(raw.get("config")), 0)
    # the trainer's evaluator: same datasets (probes un-augmented), probes, fine-tuning and twin
    evaluator = ProbeEvaluator.for_dataset(name, options, settings, seed=seed, model=model, device=device,
                                           pool=pool, num_workers=args.num_workers, progress=args.progress)  # fmt: skip
    train_ds, test_ds = evaluator.datasets()
    progress = raw.get("progress")
    step = _first(progress.get("global_step"), progress.get("step"), None) if isinstance(progress, dict) else None
    label = f"pretrained{f' (step {step})' if step is not None else ''}"
    print(f"{path}: {model.model_name} ({result.format} layout), probing on {name} "
          f"[{settings.train_split} {len(train_ds)} / {settings.test_split} {len(test_ds)}] on {device}")  # fmt: skip

    reconstruction = _reconstruction(model, raw.get("config"), args.baseline_batches, device)
    rows = [(label, evaluator.evaluate(model))]
    if args.compare_random_init:
        rows.append(("random init", evaluator.evaluate(evaluator.twin(model))))  # the trainer's twin
    print(format_table(rows))
    first = rows[0][1]
    s = settings
    labels = f", {s.finetune_label_fraction:.0%} of the labels" if s.finetune_label_fraction < 1 else ""
    labels += f", layer decay {s.finetune_layer_decay:g}" if s.finetune_layer_decay is not None else ""
    tuned = (f"fine-tuning {s.finetune_epochs} epochs (lr {s.finetune_lr:g}, batch {s.finetune_batch_size}{labels}), "
             if s.finetune_epochs else "")  # fmt: skip
    seconds = sum(r["seconds"] + r.get("finetune_seconds", 0.0) for _, r in rows)
    print(f"{first['num_classes']} classes, {pool} features, kNN k={first['knn_k']} (T=0.07), "
          f"linear probe {s.linear_epochs} epochs, {tuned}{seconds:.1f} s")  # fmt: skip
    if args.json:
        from maeflow.utils.io import atomic_write

        out = {
            "checkpoint": str(path),
            "model": model.model_name,
            "step": step,
            "dataset": name,
            "options": evaluator.options,
            "train_split": s.train_split,
            "test_split": s.test_split,
            "seed": seed,
            "pretrained": first,
        }
        if reconstruction is not None:
            out["reconstruction"] = reconstruction
        if s.finetune_epochs:
            out["finetune_options"] = evaluator.finetune_options  # the fine-tuning split's (augmented by default)
        if args.compare_random_init:
            out["random_init"] = rows[1][1]
        atomic_write(args.json, (json.dumps(out, indent=2, default=str) + "\n").encode())
        print(f"wrote {args.json}")
    return 0


def _reconstruction(model, config: dict[str, Any] | None, batches: int, device) -> dict[str, Any] | None:
    """The loss-vs-trivial line on the run's pretraining data (its ``data`` section), printed;
    None for a checkpoint without a trainer config or with ``batches`` 0."""
    from maeflow.data import build_dataset
    from maeflow.eval.baseline import format_reconstruction, reconstruction_vs_trivial

    if batches < 0:
        raise ValueError(f"--baseline-batches must be >= 0, got {batches}")
    data = config.get("data") if isinstance(config, dict) else None
    if not batches or not isinstance(data, dict) or not data.get("name"):
        return None
    split = data.get("split", "train")
    dataset = build_dataset(data["name"], split, model=model, **(data.get("options") or {}))
    model.to(device)
    res = reconstruction_vs_trivial(model, dataset, batches=batches, batch_size=int(data.get("batch_size", 64)))
    print(format_reconstruction(res, split))
    return res


def format_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """One line per encoder; a ``fine-tune top-1`` column when the rows carry ``finetune_top1``."""
    width = max(len("encoder"), *(len(label) for label, _ in rows))
    tuned = any("finetune_top1" in r for _, r in rows)
    head, rule = f"{'encoder':<{width}}  kNN top-1  linear top-1", f"{'-' * width}  ---------  ------------"
    if tuned:
        head, rule = head + "  fine-tune top-1", rule + "  ---------------"
    lines = [head, rule]
    for label, r in rows:
        line = f"{label:<{width}}  {r['knn_top1']:>8.2f}%  {r['linear_top1']:>11.2f}%"
        if tuned:
            line += f"  {r['finetune_top1']:>14.2f}%" if "finetune_top1" in r else f"  {'-':>15}"
        lines.append(line)
    return "\n".join(lines)
