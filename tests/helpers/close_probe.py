"""Run under ``python -W error::ResourceWarning``: a loader over OME-TIFF, ND2 and OME-Zarr rows
reads two epochs and is closed (``--no-close``: left to the garbage collector, the control)."""

from __future__ import annotations

import argparse
import gc

import timelapse_pipes as tp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ome_tiff")
    parser.add_argument("nd2")
    parser.add_argument("ome_zarr")
    parser.add_argument("--method", default="thread")
    parser.add_argument("--no-close", action="store_true")
    args = parser.parse_args()
    rows = {"dict_meta": {"path": [args.ome_tiff, args.nd2, args.ome_zarr], "channel": [0, 0, 0]}}
    loader = tp.build_loader(rows, split=None, spatial_dims=3, crop={"roi_size": [1, 32, 32]},
                             num_timepoints=2, samples_per_epoch=6, batch_size=3, num_workers=2,
                             worker_method=args.method)
    batches = 0
    for _ in range(2):
        batches += sum(1 for _ in loader)
    if not args.no_close:
        loader.close()
    del loader
    gc.collect()
    print(f"batches={batches}")


if __name__ == "__main__":
    main()
