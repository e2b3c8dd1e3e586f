"""``maeflow demo [NAME]``: pretrain a plugin's demo MAE end to end and show that it learned something.

A demo is a small training config a plugin ships as package data (``registry.demo(name,
config)``; generated or bundled data, nothing downloaded, minutes on a CPU), so it runs from an
installed wheel as well as from a checkout. Running one trains it with checkpoints and a metrics
log, writes a reconstruction figure, then scores the pretrained encoder next to a randomly
initialized one (kNN, linear probe, and fine-tuning where the config asks) on held-out data.

    maeflow demo                  # the default demo (the one its plugin marks default=True)
    maeflow demo --list           # every registered demo
    maeflow demo NAME train.epochs=2 run.output_dir=runs/demo-short
    maeflow demo --config my.yaml # any training config, with the same final comparison
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from importlib.resources import as_file
from pathlib import Path

# what makes a training run a demo: the final evaluation, next to a randomly initialized twin
DEMO_OVERRIDES = ("eval.final=true", "eval.compare_random_init=true")


def add_arguments(parser) -> None:
    parser.usage = "maeflow demo [-h] [--list] [--config PATH] [NAME] [KEY=VALUE ...]"
    parser.add_argument("words", nargs="*", metavar="NAME KEY=VALUE",
                        help="a registered demo's name (default: the default demo), then config overrides, "
                             "e.g. train.epochs=2")  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the registered demos and exit")
    parser.add_argument("--config", metavar="PATH", help="run this training config instead of a registered demo")


def split_words(words: list[str]) -> tuple[str | None, list[str]]:
    """``[NAME] [KEY=VALUE ...]`` → (name or None, overrides): a name has no ``=``."""
    if words and "=" not in words[0]:
        return words[0], list(words[1:])
    return None, list(words)


def default_demo(demos) -> str:
    """The demo a bare ``maeflow demo`` runs: the one registered with ``default=True`` (or the
    only one registered)."""
    marked = [e.name for e in demos.entries() if e.obj.default]
    if len(marked) == 1:
        return marked[0]
    if not marked and len(demos) == 1:
        return demos.names()[0]
    if not len(demos):
        raise ValueError("no demo is registered: install a plugin that ships one (maeflow plugins lists them)")
    why = f"several demos are marked default ({', '.join(marked)})" if marked else "no demo is marked default"
    raise ValueError(f"{why}: name one, e.g. `maeflow demo {demos.names()[0]}` (maeflow demo --list)")


@contextlib.contextmanager
def demo_config(name: str | None, config: str | None) -> Iterator[tuple[str, Path]]:
    """(label, a file path) of the config to run: ``config`` as given, else the named (or default)
    demo's package data, as a real file for as long as the ``with`` block runs."""
    if config is not None:
        yield Path(config).stem, Path(config)
        return
    from maeflow.plugins import registry

    demos = registry("demo")
    name = name or default_demo(demos)
    with as_file(demos.get(name).config) as path:
        yield name, Path(path)


def list_demos() -> list[str]:
    """One line per registered demo: name, plugin, what it trains."""
    from maeflow.config import load_config
    from maeflow.plugins import registry

    demos = registry("demo")
    try:
        default = default_demo(demos)
    except ValueError:  # none registered, or no single default: still list them
        default = None
    lines = []
    for entry in demos.entries():
        with as_file(entry.obj.config) as path:
            cfg = load_config(path)
        mark = " (default)" if entry.name == default else ""
        lines.append(f"{entry.name + mark:<20}{entry.plugin:<22}{cfg.model.name} on {cfg.data.name}, "
                     f"{cfg.train.epochs} epochs -> {cfg.run.output_dir}")  # fmt: skip
    return lines


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

    if args.list:
        print("\n".join(list_demos()) or "no demo is registered")
        return 0
    name, overrides = split_words(args.words)
    if name is not None and args.config is not None:
        raise UserError(f"give a demo name ({name!r}) or --config, not both")
    start = time.perf_counter()
    with demo_config(name, args.config) as (label, path):
        cfg = load_config(path, [*DEMO_OVERRIDES, *overrides])
    check_registered(cfg)
    print(f"maeflow demo {label}: {cfg.model.name} on {cfg.data.name}, {cfg.train.epochs} epochs "
          f"-> {cfg.run.output_dir} (config: {path})")  # fmt: skip
    try:
        result = build_trainer(cfg).fit()
    except NonFiniteLossError as exc:
        raise UserError(str(exc)) from None
    report(result, show_eval=False)
    if result.interrupted:
        print(f"interrupted ({result.interrupted}); run the same command again to resume")
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
