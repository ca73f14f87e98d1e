"""Real torchrun processes (gloo, CPU): disjoint shards whose union is the single-process epoch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import timelapse_pipes as tp

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_torchrun_two_ranks(synthetic, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,channel,split\n{synthetic['zarr_v3']},1,train\n{synthetic['zarr_v2']},0,train\n")
    out = tmp_path / "rank"
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
               "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
               str(Path(__file__).resolve().parents[1] / "helpers" / "dist_worker.py"), str(manifest), str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank.{r}.json").read_text()) for r in range(2)]
    assert [r["world"] for r in ranks] == [2, 2]

    single = tp.build_loader(str(manifest), batch_size=1, samples_per_epoch=11, num_timepoints=2, seed=5,
                             spatial_dims=3, crop={"roi_size": [2, 16, 16]})
    reference = {b["sample_index"].item(): b["raw"].sum().item() for b in single}
    seen: dict[int, list[float]] = {}
    for rank in ranks:
        for batch in rank["delivered"]:
            for index, total in zip(batch["index"], batch["sum"]):
                seen.setdefault(index, []).append(total)
    # 11 samples over 2 ranks with padding: 12 slots, sample 0 wrapped onto rank 1's tail
    assert sorted(seen) == list(range(11))
    assert sum(len(v) for v in seen.values()) == 12 and len(seen[0]) == 2
    for index, totals in seen.items():
        assert all(t == pytest.approx(reference[index], rel=0, abs=0) for t in totals)
    rank0 = sorted(i for b in ranks[0]["delivered"] for i in b["index"])
    rank1 = sorted(i for b in ranks[1]["delivered"] for i in b["index"])
    assert rank0 == [0, 2, 4, 6, 8, 10] and rank1 == [0, 1, 3, 5, 7, 9]
    for rank in ranks:  # each rank resumes exactly after its second batch
        assert rank["resumed"] == rank["delivered"][2:]
