"""``maeflow bench CONFIG [key=value ...]``: run a bench config and write its table, JSON and chart."""

from __future__ import annotations

import datetime as _dt
import shutil
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("config", help="bench config YAML (e.g. configs/bench/cpu_smoke.yaml)")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value",
        help="steps=3 (every entry), entries.<name>.batch=4 (one entry), defaults.batch=8, device=cpu, "
             "isolation=inprocess (the config grammar: docs/configs.md)",
    )  # fmt: skip
    parser.add_argument("--output-dir", help="run folder (default runs/bench/<UTC timestamp>)")
    parser.add_argument("--only", action="append", metavar="NAME[,NAME]",
                        help="run only these entries (by name; comma-separated or repeated)")  # fmt: skip
    parser.add_argument(
        "--record", metavar="DIR",
        help="also copy the Markdown and JSON to DIR/<config name>_<date>.{md,json} (e.g. benchmarks/results)",
    )  # fmt: skip
    parser.add_argument("--note", default="", help="a line stored with the results, e.g. how busy the machine was")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from maeflow.bench import load_config, parse_config, run_bench, text_table
    from maeflow.cli.common import parse_overrides

    overrides = parse_overrides(args.overrides)
    config, raw = load_config(args.config, overrides)
    if args.only:
        only = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
        names = [e.name for e in config.entries]
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ValueError(f"--only: no entry named {', '.join(map(repr, unknown))}; entries are {', '.join(names)}")
        kept = [e.model_dump(mode="json") for e in config.entries if e.name in only]
        config = parse_config({**config.model_dump(mode="json", exclude={"entries"}), "entries": kept}, args.config)
    now = _dt.datetime.now(_dt.timezone.utc)
    out_dir = Path(args.output_dir or Path("runs", "bench", now.strftime("%Y%m%d-%H%M%S")))
    bench = run_bench(config, out_dir, raw=raw, config_path=args.config, overrides=overrides,
                      progress=not args.no_progress, note=args.note)  # fmt: skip
    print(text_table(bench.results))
    print(f"\nwrote {bench.paths['json']}, {bench.paths['md']}, {bench.paths['png']}")
    if args.record:
        dest = Path(args.record)
        dest.mkdir(parents=True, exist_ok=True)
        stem = f"{Path(args.config).stem}_{now.strftime('%Y-%m-%d')}"
        for kind in ("md", "json"):
            shutil.copyfile(bench.paths[kind], dest / f"{stem}.{kind}")
        print(f"recorded {dest / stem}.{{md,json}}")
    failed = [r["name"] for r in bench.results if r["status"] != "ok"]
    return 1 if failed else 0
