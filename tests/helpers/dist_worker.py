"""Run under torchrun by test_distributed.py: each rank streams its shard, checkpoints, resumes."""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist

import timelapse_pipes as tp


def main(manifest: str, out_prefix: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    options = dict(batch_size=2, samples_per_epoch=11, num_timepoints=2, seed=5, spatial_dims=3,
                   crop={"roi_size": [2, 16, 16]}, num_workers=1)
    loader = tp.build_loader(manifest, **options)  # rank and world size from the process group
    delivered, state = [], None
    for n, batch in enumerate(loader):
        delivered.append({"index": batch["sample_index"].tolist(), "sum": batch["raw"].sum(dim=(1, 2, 3, 4, 5)).tolist()})
        if n == 1:
            state = loader.state_dict()
    resumed = tp.build_loader(manifest, **options)
    resumed.load_state_dict(state)
    rest = [{"index": b["sample_index"].tolist(), "sum": b["raw"].sum(dim=(1, 2, 3, 4, 5)).tolist()}
            for b in resumed]
    dist.barrier()
    with open(f"{out_prefix}.{rank}.json", "w") as stream:
        json.dump({"rank": rank, "world": dist.get_world_size(), "delivered": delivered, "resumed": rest,
                   "state": state}, stream)
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1], sys.argv[2])
