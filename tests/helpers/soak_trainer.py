"""A tiny 'training' process for the SIGKILL soak test: streams batches, logs each one, checkpoints
atomically every few batches, and resumes from the last checkpoint when restarted."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import timelapse_pipes as tp

OPTIONS = dict(batch_size=2, samples_per_epoch=64, num_timepoints=2, seed=21, spatial_dims=3,
               crop={"roi_size": [2, 16, 16]}, num_workers=1)
EPOCHS = 2
CHECKPOINT_EVERY = 3


def batch_record(batch) -> dict:
    return {"epoch": int(batch["epoch"][0]), "indices": batch["sample_index"].tolist(),
            "sum": float(batch["raw"].double().sum())}


def main(manifest: str, workdir: str) -> None:
    folder = Path(workdir)
    checkpoint, log = folder / "checkpoint.json", folder / "log.jsonl"
    loader = tp.build_loader(manifest, **OPTIONS)
    lines = 0
    if checkpoint.exists():
        saved = tp.load_state(checkpoint)
        loader.load_state_dict(saved["data"])
        lines = saved["lines"]
    total = EPOCHS * len(loader)
    with open(log, "a") as stream:
        while lines < total:
            for batch in loader:
                stream.write(json.dumps(batch_record(batch)) + "\n")
                stream.flush()
                os.fsync(stream.fileno())
                lines += 1
                time.sleep(0.02)  # the 'training step'
                if lines % CHECKPOINT_EVERY == 0 or lines == total:
                    tp.save_state({"data": loader.state_dict(), "lines": lines}, checkpoint)
                if lines == total:
                    break
    (folder / "DONE").write_text("ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
