"""``maeflow finetune CONFIG [key=value ...]``: fine-tune a pretrained encoder with a new head.

    maeflow finetune configs/image/finetune_demo.yaml model.source=runs/demo
    maeflow finetune configs/image/finetune_mae_vit_base_imagenet.yaml model.source=mae_pretrain_vit_base.pth
    torchrun --nproc_per_node=8 -m maeflow finetune configs/image/finetune_mae_vit_base_imagenet.yaml

Re-running the same command resumes from the newest checkpoint in ``run.output_dir``
(``run.resume=auto``). Writes ``metrics.jsonl`` (top-1/5 per epoch), ``classifier.pt`` /
``classifier.safetensors``, ``confusion.png`` and ``summary.json``. See docs/finetune.md.
"""

from __future__ import annotations

TASK = "finetune"


def add_arguments(parser) -> None:
    parser.add_argument("config", help=f"YAML config (configs/<modality>/{TASK}_*.yaml, docs/finetune.md)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. model.source=runs/demo train.epochs=5")  # fmt: skip
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args, task: str = TASK) -> int:
    from maeflow.cli import UserError
    from maeflow.downstream import Downstream, load_downstream_config
    from maeflow.runtime.strategy import info

    cfg = load_downstream_config(args.config, args.overrides)
    if cfg.task != task:
        other = "linprobe" if task == "finetune" else "finetune"
        raise UserError(f"{args.config} is a {cfg.task} config (task: {cfg.task}); run it with maeflow {other}")
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    try:
        result = Downstream(cfg).fit()
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if not info().is_main:
        return 0
    if result.interrupted:
        print(f"interrupted ({result.interrupted}) at step {result.global_step}; run the same command again to resume")
        return {"SIGINT": 130, "SIGTERM": 143}.get(result.interrupted, 1)
    print(f"steps: {result.global_step}  top-1: {result.top1:.2f}%  top-5: {result.top5:.2f}%  "
          f"best top-1: {result.best_top1:.2f}%" + (f"  EMA top-1: {result.ema_top1:.2f}%" if result.ema_top1 else ""))
    for name, path in result.files.items():
        print(f"{name}: {path}")
    print(f"metrics: {result.output_dir / 'metrics.jsonl'}")
    return 0
