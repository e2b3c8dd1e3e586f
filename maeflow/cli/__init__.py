"""The ``maeflow`` command line. Each subcommand lives in its own module with
``add_arguments(parser)`` and ``run(args) -> int``; :data:`COMMANDS` lists them."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys

from maeflow._optional import MissingDependency

# name → (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": ("maeflow.cli.plugins", "list installed plugins and what each registered"),
    "convert": ("maeflow.cli.convert", "write a checkpoint in another layout (MAE, Hugging Face, timm)"),
    "visualize": ("maeflow.cli.visualize", "write a reconstruction figure for a checkpoint"),
    "train": ("maeflow.cli.train", "pretrain from a YAML config (key=value overrides; torchrun for several processes)"),
    "demo": ("maeflow.cli.demo", "pretrain a plugin's tiny demo MAE and compare its probes with random init (--list)"),
    "bench": ("maeflow.cli.bench", "measure presets side by side: speed, FLOPs, memory, loss vs baseline, probes"),
    "eval": ("maeflow.cli.eval", "kNN / linear-probe (and optionally fine-tuning) top-1 of a checkpoint's encoder"),
    "shard": ("maeflow.cli.shard", "write a config's dataset to WebDataset tar shards (read by data.name=webdataset)"),
    "finetune": ("maeflow.cli.finetune", "fine-tune a pretrained encoder with a new head (the papers' recipes)"),
    "linprobe": ("maeflow.cli.linprobe", "train a linear head on a frozen pretrained encoder (MAE's LARS + BatchNorm)"),
}


class UserError(Exception):
    """An error the user can fix; printed as one line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maeflow", description="Masked-autoencoder pretraining for any modality.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except (UserError, ValueError, FileNotFoundError, NotADirectoryError, MissingDependency) as exc:
        if args.verbose:
            raise
        print(f"maeflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk (or quota) anywhere: one line; other OS errors keep their traceback
        if args.verbose or exc.errno not in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise
        from maeflow.runtime.state import DiskFullError  # its message says what the save needed

        where = f" writing {exc.filename}" if exc.filename else ""
        what = str(exc) if isinstance(exc, DiskFullError) else f"no space left on the device{where}; free some space"
        print(f"maeflow {args.command}: error: {what}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"maeflow {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
