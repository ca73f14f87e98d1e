"""Crash soak: SIGKILL a small training process 12 times, at random moments spread over both epochs of
its stream; the stitched stream, resumed each time from the last atomic checkpoint, equals the
uninterrupted stream, and every batch a killed process delivered, even the ones after its last
checkpoint (discarded and delivered again), was the right one."""

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
from tests.helpers import soak_trainer

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
KILLS = 12  # each costs a process start (about 5 s): the suite stays near 10 minutes on 2 cores
MIN_KILL_POSITIONS = 8  # the kills must land at this many different positions of the stream at least


def _lines(path: Path) -> list[str]:
    """The complete lines of the log (a line cut short by a kill has no newline yet)."""
    text = path.read_text() if path.exists() else ""
    return text.split("\n")[:-1]


def test_sigkill_soak(synthetic, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,channel,split\n{synthetic['zarr_v3']},0,train\n{synthetic['zarr_v2']},1,train\n")
    reference_loader = tp.build_loader(str(manifest), **soak_trainer.OPTIONS)
    reference = [soak_trainer.batch_record(b) for _ in range(soak_trainer.EPOCHS) for b in reference_loader]

    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "tests.helpers.soak_trainer", str(manifest), str(work)]
    log, checkpoint = work / "log.jsonl", work / "checkpoint.json"
    kill_positions: list[int] = []  # lines delivered when each kill landed
    repeated = 0  # lines delivered after a checkpoint, discarded and delivered again
    rng = random.Random(1234)
    # the batch each kill waits for: spread over the stream, short of its last batches (the trainer
    # must still be running when the kill comes)
    aims = sorted(rng.sample(range(1, len(reference) - 3), KILLS))
    while not (work / "DONE").exists():
        start_lines = len(_lines(log))
        child = subprocess.Popen(command, env=env, cwd=str(tmp_path), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        killed = False
        if len(kill_positions) < KILLS:
            # Wait until it has delivered the batch this kill aims at (at least one more than it resumed
            # with), then kill at a random moment of the next step: the training step, a checkpoint
            # being written, or the next read. Aiming at batches, not at times after the start, spreads
            # the kills over the whole stream: a slow moment (an epoch's start) cannot catch them all.
            target = max(start_lines + 1, aims[len(kill_positions)])
            deadline = time.monotonic() + 60
            while len(_lines(log)) < target and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.03))
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                killed = True
        _, stderr = child.communicate(timeout=120)
        if child.returncode not in (0, -signal.SIGKILL):
            pytest.fail(f"trainer crashed on its own: {stderr.decode()[-2000:]}")
        lines = _lines(log)
        if killed:
            kill_positions.append(len(lines))
        # batches delivered after the last checkpoint will be delivered again: account for them
        kept = tp.load_state(checkpoint)["lines"] if checkpoint.exists() else 0
        assert start_lines <= kept <= len(lines), "the checkpoint claims lines the log does not hold"
        # what the killed process delivered after its checkpoint was right too, position by position
        discarded = [json.loads(line) for line in lines[kept:]]
        assert discarded == reference[kept:len(lines)], f"wrong batches delivered before the kill at {len(lines)}"
        repeated += len(discarded)
        log.write_text("".join(line + "\n" for line in lines[:kept]))
    stitched = [json.loads(line) for line in _lines(log)]
    assert stitched == reference  # nothing lost, nothing repeated after accounting
    assert len(kill_positions) >= KILLS
    assert len(set(kill_positions)) >= MIN_KILL_POSITIONS, f"the kills landed only at {sorted(set(kill_positions))}"
    per_epoch = len(reference) // soak_trainer.EPOCHS
    assert min(kill_positions) <= per_epoch < max(kill_positions), f"kills in one epoch only: {kill_positions}"
    assert repeated > 0, "no kill landed between two checkpoints: the re-delivery path went untested"
