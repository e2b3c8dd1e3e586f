"""Spawned-process workers for the downstream tests (importable by name in the children)."""


def ddp_finetune_worker(rank: int, world: int, port: int, config: dict, out: str) -> None:
    """One gloo process of a fine-tune, as torchrun would start it; rank 0 saves the per-step losses."""
    import json
    import os

    import torch
    import torch.distributed as dist

    from maeflow.downstream import Downstream, downstream_config_from_dict

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    losses = []
    try:
        recipe = Downstream(downstream_config_from_dict(config), callbacks=[lambda r, rec: losses.append(rec["loss"])])
        result = recipe.fit()
        if rank == 0:
            with open(out, "w") as f:
                json.dump({"losses": losses, "top1": result.top1}, f)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
