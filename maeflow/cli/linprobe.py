"""``maeflow linprobe CONFIG [key=value ...]``: train a linear head on a frozen pretrained encoder.

    maeflow linprobe configs/image/linprobe_demo.yaml model.source=runs/demo
    maeflow linprobe configs/image/linprobe_demo.yaml model.source=runs/demo train.optimizer=protocol

The default is MAE's recipe (cls token, BatchNorm without affine, LARS); ``train.optimizer=protocol``
runs ``maeflow eval``'s linear probe instead (same numbers). See docs/finetune.md.
"""

from __future__ import annotations

from maeflow.cli import finetune as _finetune


def add_arguments(parser) -> None:
    parser.add_argument("config", help="YAML config (configs/<modality>/linprobe_*.yaml, docs/finetune.md)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. model.source=runs/demo train.epochs=5")  # fmt: skip
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args) -> int:
    return _finetune.run(args, task="linprobe")
