"""``maeflow shard CONFIG --split train -o DIR [--shard-size N] [key=value ...]``: write a
config's dataset to WebDataset tar shards with an index, for ``data.name: webdataset``.

    maeflow shard configs/image/demo.yaml -o shards/digits
    maeflow shard my_imagenet.yaml --split train -o /data/in1k-shards --shard-size 5000
    maeflow train my_imagenet.yaml data.name=webdataset data.options='{root: /data/in1k-shards}'

The dataset is built as training builds it (options the model has default to the model's),
and every sample is stored as its original bytes (a folder dataset's files, unreadable ones
left out; a generated dataset's own records), with its label and metadata. Nothing is
re-encoded: the shard dataset decodes and augments with the plugin's own code.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("config", help="YAML training config whose data section names the dataset")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (data.options.root=DIR)")
    parser.add_argument("--split", default="train", choices=("train", "test"), help="the split to write")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the shards and the index")
    parser.add_argument("--shard-size", type=int, default=1000, metavar="N", help="samples per shard (default 1000)")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: list(v) if isinstance(v, (tuple, set)) else str(v)))


def resolved_options(name: str, options: dict[str, Any], model) -> dict[str, Any]:
    """``options`` plus what :func:`maeflow.data.build_dataset` fills from the model."""
    from maeflow.data import builder_options, model_settings
    from maeflow.plugins import registry

    out = dict(options)
    valid = builder_options(registry("dataset").get(name), options)
    settings = model_settings(model)
    for key in valid or []:
        if key not in out and key in settings:
            out[key] = settings[key]
    return _jsonable(out)


def run(args) -> int:
    from maeflow.cli import UserError
    from maeflow.config import check_registered, load_config
    from maeflow.data import num_skipped
    from maeflow.data.records import dataset_records
    from maeflow.data.shardio import write_shards
    from maeflow.plugins import registry
    from maeflow.train.builder import build_dataset, build_model

    cfg = load_config(args.config, args.overrides)
    check_registered(cfg)
    name = cfg.data.name
    if name == "webdataset":
        raise UserError("the config already reads shards (data.name: webdataset); name the dataset they came from")
    if name not in registry("codec"):
        raise UserError(f"dataset {name!r} has no registered codec, so its shards could not be read back "
                        f"(codecs: {', '.join(registry('codec').names())})")  # fmt: skip
    import torch

    with torch.device("meta"):  # only its settings are used (the options it fills: img_size, ...): no memory
        model = build_model(cfg)
    dataset = build_dataset(name, args.split, cfg.data.options, model)
    header = {
        "source": {"dataset": name, "split": args.split, "options": resolved_options(name, cfg.data.options, model)},
        "classes": list(getattr(dataset, "classes", []) or []),
        "num_classes": getattr(dataset, "num_classes", None),
        "skipped_at_write": num_skipped(dataset) or 0,
    }
    start = time.perf_counter()
    index = write_shards(dataset_records(dataset), Path(args.output), args.split, args.shard_size, header)
    total = sum(sh["samples"][-1][2] + sh["samples"][-1][3] for sh in index["shards"])
    print(f"wrote {index['num_samples']} samples of {name} ({args.split}) to {len(index['shards'])} shards in "
          f"{args.output} ({total / 1e6:.1f} MB, {time.perf_counter() - start:.1f} s); "
          f"unreadable and left out: {header['skipped_at_write']}")  # fmt: skip
    print(f"train on them with: data.name=webdataset data.options.root={args.output}")
    return 0
