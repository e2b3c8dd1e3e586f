"""One process of ``torchrun --nproc_per_node=2 tests/train/shard_epochs.py OUT ROOT...``: reads
each shard set as training does (ShardedSampler with the dataset's epoch order, the loader with
a worker) for two epochs, checks that the loader delivers the sampler's samples and that a
resumed sampler continues with them, and rank 0 writes every rank's sample keys to OUT."""

import json
import sys

import torch
import torch.distributed as dist

from maeflow.data import SeededItems, ShardedSampler, build_dataloader, build_dataset

LOCAL_BATCH = 8


def main(out: str, roots: list[str]) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    result = {}
    for root in roots:
        ds = build_dataset("webdataset", "train", root=root)
        seen = {}
        for epoch in (0, 1):
            sampler = ShardedSampler(len(ds), LOCAL_BATCH * world, world, rank, seed=0, order=ds.epoch_order)
            sampler.set_epoch(epoch)
            items = list(sampler)
            if epoch == 0:  # the whole epoch through the loader once (decoding is the slow part)
                loader = build_dataloader(ds, LOCAL_BATCH, sampler=sampler, seed=0, num_workers=1, drop_last=True,
                                          persistent_workers=False)  # fmt: skip
                positions, first = [], None
                for inputs, _labels, pos, _seeds in loader:
                    positions += pos.tolist()
                    first = inputs[0] if first is None else first
                assert positions == [p for _, p, _ in items], "the loader's positions are the sampler's"
                assert torch.equal(first, SeededItems(ds, 0)[items[0]][0]), "the loader's sample is the sampler's"
            resumed = ShardedSampler(len(ds), LOCAL_BATCH * world, world, rank, seed=0, order=ds.epoch_order)
            resumed.set_epoch(epoch)
            resumed.set_start(3 * LOCAL_BATCH)  # three steps done before the interruption
            assert list(resumed) == items[3 * LOCAL_BATCH :], "a resumed epoch continues with the same samples"
            keys = [str(ds.samples[i][0]) for i, _, _ in items]
            gathered = [None] * world
            dist.all_gather_object(gathered, keys)
            seen[epoch] = gathered
        result[root] = {"num_samples": len(ds), "epochs": seen}
    if rank == 0:
        with open(out, "w") as f:
            json.dump(result, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
