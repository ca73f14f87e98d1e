"""Crash soak: SIGKILL a small training process at random points, 20+ times; the stitched stream,
resumed each time from the last atomic checkpoint, equals the uninterrupted stream."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import timelapse_pipes as tp
from tests import soak_trainer

pytestmark = pytest.mark.timeout(600)
KILLS = 20


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_sigkill_soak(synthetic, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,channel,split\n{synthetic['zarr_v3']},0,train\n{synthetic['zarr_v2']},1,train\n")
    reference_loader = tp.build_loader(str(manifest), **soak_trainer.OPTIONS)
    reference = [soak_trainer.batch_record(b) for _ in range(soak_trainer.EPOCHS) for b in reference_loader]

    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-m", "tests.soak_trainer", str(manifest), str(work)]
    log, checkpoint = work / "log.jsonl", work / "checkpoint.json"
    stitched: list[dict] = []
    kills = repeated = 0
    rng = random.Random(1234)
    while not (work / "DONE").exists():
        start_lines = len(_lines(log))
        child = subprocess.Popen(command, env=env, cwd=str(tmp_path), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        if kills < KILLS:
            deadline = time.monotonic() + 60
            while len(_lines(log)) <= start_lines and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)  # wait until it delivers a batch, then kill at a random moment
            time.sleep(rng.uniform(0.0, 0.15))
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                kills += 1
        _, stderr = child.communicate(timeout=120)
        if child.returncode not in (0, -signal.SIGKILL):
            pytest.fail(f"trainer crashed on its own: {stderr.decode()[-2000:]}")
        # batches delivered after the last checkpoint will be delivered again: account for them
        kept = tp.load_state(checkpoint)["lines"] if checkpoint.exists() else 0
        lines = _lines(log)
        repeated += len(lines) - kept
        log.write_text("".join(line + "\n" for line in lines[:kept]))
    stitched = [json.loads(line) for line in _lines(log)]
    assert stitched == reference  # nothing lost, nothing repeated after accounting
    assert kills >= KILLS and repeated >= 0
