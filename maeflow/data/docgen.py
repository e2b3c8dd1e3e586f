"""Regenerate the dataset reference in ``docs/data.md`` from the registered builders
(:mod:`maeflow.data.describe`)::

    python -m maeflow.data.docgen                      # print the generated block
    python -m maeflow.data.docgen --write docs/data.md # rewrite the block in the file
    python -m maeflow.data.docgen --check docs/data.md # exit 1 when the file is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maeflow.data.describe import BUILTIN_PLUGINS, REGENERATE, describe_datasets, render_markdown, splice


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maeflow.data.docgen", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", help="rewrite the marked block in FILE")
    group.add_argument("--check", metavar="FILE", help="exit 1 when FILE's block differs from the builders")
    args = parser.parse_args(argv)
    block = render_markdown(describe_datasets(BUILTIN_PLUGINS))
    if args.write is None and args.check is None:
        sys.stdout.write(block)
        return 0
    path = Path(args.write or args.check)
    current = path.read_text(encoding="utf-8")
    fresh = splice(current, block)
    if args.check is not None:
        if fresh != current:
            print(f"{path} is out of date with the dataset builders; regenerate it: {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
