"""``maeflow demo``: pretrain the demo image MAE end to end and show that it learned something.

Runs ``configs/image/demo.yaml`` (a tiny ViT on scikit-learn's digits, nothing downloaded):
training with checkpoints and a metrics log, a reconstruction figure, then kNN and linear-probe
top-1 on held-out digits for the pretrained encoder next to a randomly initialized one.

    maeflow demo
    maeflow demo train.epochs=2 run.output_dir=runs/demo-short
"""

from __future__ import annotations

import time
from pathlib import Path

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "image" / "demo.yaml"


def add_arguments(parser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.epochs=2")
    parser.add_argument("--config", default=str(DEMO_CONFIG), help="config to run (default: configs/image/demo.yaml)")


PROTOCOLS = (("knn_top1", "kNN"), ("linear_top1", "linear probe"), ("finetune_top1", "fine-tuning"))


def comparison_verdict(results: dict[str, float]) -> str | None:
    """Which evaluations pretraining wins against the random-init twin (None without a twin)."""
    pairs = [(name, results[k], results[f"random_{k}"]) for k, name in PROTOCOLS
             if k in results and f"random_{k}" in results]  # fmt: skip
    if not pairs:
        return None
    won = _words([name for name, a, b in pairs if a > b])
    lost = _words([name for name, a, b in pairs if a <= b])
    if not lost:
        return f"pretraining beats random initialization on {won}"
    if not won:
        return f"pretraining did NOT beat random initialization ({lost}): train longer (train.epochs=...)"
    return f"pretraining beats random initialization on {won}, not on {lost}"


def _words(names: list[str]) -> str:
    """Names joined as prose: a; a and b; a, b and c (empty for none)."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def comparison_table(results: dict[str, float]) -> str:
    """The pretrained vs random-init probe numbers as a small table (with a fine-tune column
    when ``eval.finetune_epochs`` was set)."""
    rows = [("pretrained MAE", results.get("knn_top1"), results.get("linear_top1"), results.get("finetune_top1")),
            ("random init", results.get("random_knn_top1"), results.get("random_linear_top1"),
             results.get("random_finetune_top1"))]  # fmt: skip
    tuned = any(r[3] is not None for r in rows)

    def cell(v, width=13):
        return f"{v:>{width}.1f}" if v is not None else f"{'-':>{width}}"

    header = f"{'encoder':<16}{'kNN top-1 %':>13}{'linear top-1 %':>16}"
    lines = [header + (f"{'fine-tune top-1 %':>19}" if tuned else "")]
    lines += [f"{name:<16}{cell(k)}{cell(lin, 16)}" + (cell(ft, 19) if tuned else "") for name, k, lin, ft in rows]
    return "\n".join(lines)


def run(args) -> int:
    from maeflow.cli import UserError
    from maeflow.cli.train import report
    from maeflow.config import check_registered, load_config
    from maeflow.train import NonFiniteLossError, build_trainer

    start = time.perf_counter()
    cfg = load_config(args.config, ["eval.final=true", "eval.compare_random_init=true", *args.overrides])
    check_registered(cfg)
    print(f"maeflow demo: {cfg.model.name} on {cfg.data.name}, {cfg.train.epochs} epochs -> {cfg.run.output_dir}")
    try:
        result = build_trainer(cfg).fit()
    except NonFiniteLossError as exc:
        raise UserError(str(exc)) from None
    report(result, show_eval=False)
    if result.interrupted:
        print(f"interrupted ({result.interrupted}); run `maeflow demo` again to resume")
        return 130
    print()
    tuned = ", fine-tune: the whole encoder trained" if "finetune_top1" in result.eval else ""
    print(f"held-out {cfg.eval.dataset or cfg.data.name} (test split), probes: frozen encoder features{tuned}:")
    print(comparison_table(result.eval))
    verdict = comparison_verdict(result.eval)
    if verdict:
        print(verdict)
    print(f"wall time: {time.perf_counter() - start:.0f} s")
    return 0
