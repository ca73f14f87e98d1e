"""The timelapse-pipes command line: demo, inspect, preview, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.timeout(300)


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TQDM_DISABLE": "1"}
    return subprocess.run([sys.executable, "-m", "timelapse_pipes", *args], capture_output=True, text=True,
                          timeout=240, env=env, cwd=cwd)


def test_demo_runs_and_verifies_resume(tmp_path):
    done = run("demo", "--out", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "bit-identical" in done.stdout
    assert json.loads((tmp_path / "demo" / "checkpoint.json").read_text())["version"] == 1


def test_inspect_good_and_bad_rows(shared_data, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("path,channel,split,scene\n"
                    f"{shared_data / 'nd2' / 'example-timelapse.nd2'},0,train,0\n"
                    f"{shared_data / 'ome-tiff' / '181003_multi_pos_time_course_1_MMStack.ome.tif'},0,val,Image:1\n")
    done = run("inspect", str(good))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "T53 C1 Z1 Y64 X64" in done.stdout and "no problems found" in done.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("path,channel,split,scene,stop\n"
                   f"{shared_data / 'nd2' / 'example-timelapse.nd2'},3,train,0,\n"
                   f"{tmp_path / 'missing.nd2'},0,train,0,\n"
                   f"{shared_data / 'ome-tiff' / 'time-series.ome.tif'},0,train,5,\n"
                   f"{shared_data / 'ome-tiff' / 'time-series.ome.tif'},0,train,0,99\n"
                   f"{shared_data / 'lif' / 'testdata_2channel_xz.lif'},0,train,xzt,\n")
    done = run("inspect", str(bad), "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    problems = {p["row"]: p["error"] for p in report["problems"]}
    assert sorted(problems) == [1, 2, 3, 4, 5]
    assert "channel 3 is out of range" in problems[1]
    assert "file not found" in problems[2]
    assert "scene 5 is out of range" in problems[3]
    assert "stop=99 is beyond" in problems[4]
    assert "cannot decode" in problems[5]


def test_inspect_bad_manifest_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    done = run("inspect", str(empty))
    assert done.returncode == 1 and "is empty" in done.stdout


def test_preview_png(shared_data, tmp_path):
    from PIL import Image

    manifest = tmp_path / "m.csv"
    manifest.write_text("path,channel,split,scene\n"
                        f"{shared_data / 'nd2' / 'example-timelapse.nd2'},0,train,0\n"
                        f"{shared_data / 'ome-tiff' / 'multi-channel-time-series.ome.tif'},\"0,2\",train,0\n")
    output = tmp_path / "preview.png"
    done = run("preview", str(manifest), "-o", str(output), "--num-timepoints", "3", "--tile", "64")
    assert done.returncode == 0, done.stderr[-2000:]
    image = np.asarray(Image.open(output))
    assert image.shape == (2 * (64 + 14), 6 * 64)
    nd2_tiles = image[14:78]
    assert nd2_tiles[:, :192].std() > 10 and nd2_tiles[:, 192:].max() == 0  # 3 tiles, then blank


def test_usage_errors_exit_2():
    assert run().returncode == 2
    assert run("inspect").returncode == 2
    assert "demo" in run("--help").stdout


@pytest.mark.timeout(240)
def test_bench_quick_mode_writes_the_table(tmp_path):
    """The benchmarks run in --quick mode only, to prove they work (figures live in docs/)."""
    from pathlib import Path

    out = tmp_path / "bench.md"
    env = {**os.environ, "TQDM_DISABLE": "1"}
    done = subprocess.run([sys.executable, "-m", "timelapse_pipes", "bench", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=230, env=env,
                          cwd=str(Path(__file__).resolve().parents[1]))
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    for target in ("start-up", "full frames", "crops", "resume", "memory"):
        assert f"| {target} |" in text
