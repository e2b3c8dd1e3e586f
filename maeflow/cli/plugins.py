"""``maeflow plugins``: what is installed and what each plugin registered."""

from __future__ import annotations

import json


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args) -> int:
    from maeflow.plugins import plugin_summary

    rows = plugin_summary()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        head = row["name"] + (f"  ({row['distribution']})" if row.get("distribution") else "")
        if row.get("disabled"):
            head += "  [disabled by MAEFLOW_DISABLE_PLUGINS]"
        if row.get("error"):
            head += f"  [failed to load: {row['error']}]"
        print(head)
        for kind, names in row["components"].items():
            print(f"  {kind:<18} {', '.join(names)}")
    return 0
