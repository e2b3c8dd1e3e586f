"""Runs one bench entry in a fresh process: ``python -m maeflow.bench.worker IN.json OUT.json``.

``IN.json`` holds ``{"entry": {...}, "device": ..., "threads": ...}``; the result mapping (or a
failed row with the error) is written to ``OUT.json``. A fresh process per entry gives each
entry its own peak memory and keeps a crash (say, out of memory) from ending the run.
"""

from __future__ import annotations

import json
import sys
import traceback


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m maeflow.bench.worker IN.json OUT.json", file=sys.stderr)
        return 2
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")  # fmt: skip
    from maeflow.bench.config import BenchEntry
    from maeflow.bench.measure import run_entry
    from maeflow.bench.runner import failed_result

    with open(argv[0]) as f:
        job = json.load(f)
    entry = BenchEntry.model_validate(job["entry"])
    try:
        result = run_entry(entry, job.get("device", "auto"), job.get("threads"))
    except Exception as exc:  # reported in the table; the run goes on with the next entry
        traceback.print_exc()
        result = failed_result(entry, exc)
    with open(argv[1], "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
