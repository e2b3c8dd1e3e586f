"""``maeflow bench``: side-by-side measurements of registered MAE presets.

A bench config lists entries — a model preset by registry name, a data source (``synthetic``
inputs from the tokenizer, or a registered dataset), batch, steps, precision, attention backend,
compile — and :func:`run_bench` validates them all against the registries, runs them one after
another (each in a fresh process by default), and writes ``results.json``, ``results.md`` and
``results.png``. Models, datasets and peer implementations (``bench_subject``, e.g. the image
plugin's Hugging Face twin) of any installed plugin take part with no change here. Each entry
trains with the trainer's runtime: its loader, mask seeds, precision, optimizer factory and
step function (:mod:`maeflow.bench.measure`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maeflow.bench.config import BenchConfig, BenchEntry, DataSpec, OptimizerSpec, load_config, parse_config
from maeflow.bench.measure import RESULT_FIELDS, run_entry
from maeflow.bench.report import markdown_report, text_table, write_outputs
from maeflow.bench.runner import run_entries, validate


@dataclass
class BenchRun:
    record: dict[str, Any]  # what results.json holds
    paths: dict[str, Path]  # json, md, png

    @property
    def results(self) -> list[dict[str, Any]]:
        return self.record["results"]


def run_bench(
    config: BenchConfig,
    output_dir: str | Path,
    raw: dict[str, Any] | None = None,
    config_path: str | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    note: str = "",
) -> BenchRun:
    """Validate every entry (``ValueError`` before anything runs), run them, write the files."""
    from maeflow.bench.report import run_record

    validate(config)
    out = Path(output_dir)
    t0 = time.perf_counter()
    results = run_entries(config, out / "logs", progress=progress)
    record = run_record(raw if raw is not None else config.model_dump(mode="json"), config_path, results,
                        time.perf_counter() - t0, overrides, note)  # fmt: skip
    return BenchRun(record, write_outputs(record, out))


__all__ = [
    "RESULT_FIELDS",
    "BenchConfig",
    "BenchEntry",
    "BenchRun",
    "DataSpec",
    "OptimizerSpec",
    "load_config",
    "markdown_report",
    "parse_config",
    "run_bench",
    "run_entry",
    "text_table",
    "validate",
]
