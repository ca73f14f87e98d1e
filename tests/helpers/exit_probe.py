"""A program that breaks out of a loader with thread workers after 2 batches and ends without
``close()``: it must exit cleanly (the loader closes itself at interpreter exit)."""

from __future__ import annotations

import sys

import timelapse_pipes as tp


def main() -> None:
    manifest, method = sys.argv[1], sys.argv[2]
    loader = tp.build_loader(manifest, split="train", num_timepoints=3, timepoint_sampling="sequential",
                             spatial_dims=2, crop={"roi_size": [64, 64]}, samples_per_epoch=64, batch_size=4,
                             num_workers=2, worker_method=method)
    for taken, _ in enumerate(loader, start=1):
        if taken == 2:
            break
    print("batches=2")


if __name__ == "__main__":
    main()
