"""``maeflow train CONFIG [key=value ...]``: pretrain from a config file.

    maeflow train configs/<modality>/demo.yaml
    maeflow train configs/<modality>/demo.yaml train.epochs=5 run.output_dir=runs/demo5
    torchrun --nproc_per_node=4 -m maeflow train configs/<modality>/<recipe>.yaml

Re-running the same command resumes from the newest checkpoint in ``run.output_dir``
(``run.resume=auto``); ``run.resume=never`` starts over.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("config", help="YAML config (see configs/ and docs/configs.md)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. train.epochs=5 data.batch_size=32")  # fmt: skip
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def report(result, show_eval: bool = True) -> None:
    """One short summary of a finished (or interrupted) run, printed on rank 0."""
    loss = "-" if result.last_loss is None else f"{result.last_loss:.4f}"
    print(f"steps: {result.global_step}  last loss: {loss}")
    if result.checkpoint:
        print(f"checkpoint: {result.checkpoint}")
    print(f"metrics: {result.output_dir / 'metrics.jsonl'}")
    if result.reconstruction:
        print(f"reconstruction: {result.reconstruction}")
    for key, value in result.eval.items() if show_eval else ():
        print(f"{key}: {value:.2f}")


def run(args) -> int:
    from maeflow.cli import UserError
    from maeflow.config import check_registered, load_config
    from maeflow.runtime.strategy import info
    from maeflow.train import NonFiniteLossError, build_trainer

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    check_registered(cfg)
    trainer = build_trainer(cfg)
    is_main = True
    try:
        result = trainer.fit()
        is_main = info().is_main
    except NonFiniteLossError as exc:
        raise UserError(str(exc)) from None
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if not is_main:
        return 0
    report(result)
    if result.interrupted:
        print(f"interrupted ({result.interrupted}); run the same command again to resume")
        return {"SIGINT": 130, "SIGTERM": 143}.get(result.interrupted, 1)
    return 0
