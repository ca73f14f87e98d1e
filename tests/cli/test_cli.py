"""The timelapse-pipes command line: demo, inspect, preview, bench, exit codes."""

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
    assert json.loads((tmp_path / "demo" / "checkpoint.json").read_text())["version"] == 2


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


def test_preview_draws_zstacks_2d_files_and_failed_rows(shared_data, tmp_path):
    """Each row is read in the dims that fit it; a row that fails gets its error in its tile area."""
    from PIL import Image

    tile, label = 64, 14
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,channel,split\n"
                        f"{shared_data / 'nd2' / 'example-zstack.nd2'},0,train\n"
                        f"{shared_data / 'ome-tiff' / 'time-series.ome.tif'},0,train\n"
                        f"{tmp_path / 'missing.nd2'},0,train\n")
    output = tmp_path / "preview.png"
    done = run("preview", str(manifest), "-o", str(output), "--num-timepoints", "3", "--tile", str(tile))
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    failures = [line for line in done.stderr.splitlines() if line.startswith("row ")]
    assert len(failures) == 1 and failures[0].startswith("row 3: ") and "missing.nd2" in failures[0]
    assert "file not found" in failures[0]
    assert "1 row(s) failed" in done.stdout

    image = np.asarray(Image.open(output))
    assert image.shape == (3 * (tile + label), 3 * tile)  # 3 rows x 3 tiles (the time series' 3 frames)
    rows = [image[r * (tile + label) + label:(r + 1) * (tile + label)] for r in range(3)]
    zstack, series, missing = rows
    assert zstack[:, :tile].std() > 10  # the Z-stack (one frame): one max-projected tile...
    assert zstack[:, tile:].max() == 0  # ...then blank
    for t in range(3):
        assert series[:, t * tile:(t + 1) * tile].std() > 10
    assert not np.array_equal(series[:, :tile], series[:, 2 * tile:3 * tile])  # different timepoints
    # the failed row: a grey panel over the whole tile area with the error written in it
    assert (missing == 48).mean() > 0.5
    assert (missing[3:-3, 3:-3] > 128).sum() > 300  # the text (the outline excluded)


def test_preview_zstack_tile_is_the_max_projection(shared_data, tmp_path):
    """The Z-stack's tile is the max over its 11 planes, as bioio reads them."""
    from PIL import Image

    from tests.helpers import bioio_reference
    from timelapse_pipes.cli.preview import stretch

    path = shared_data / "nd2" / "example-zstack.nd2"
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,channel\n{path},0\n")
    output = tmp_path / "preview.png"
    done = run("preview", str(manifest), "-o", str(output), "--split-column", "none", "--tile", "32")
    assert done.returncode == 0, done.stderr[-2000:]
    reference = bioio_reference(str(path), [0], [0])[0, 0]
    assert reference.shape[0] == 11
    expected = np.asarray(Image.fromarray(stretch(reference.max(axis=0).astype(np.float32)))
                          .resize((32, 32), Image.Resampling.NEAREST))
    assert np.array_equal(np.asarray(Image.open(output))[14:46, :32], expected)


def test_usage_errors_exit_2():
    assert run().returncode == 2
    assert run("inspect").returncode == 2
    assert "demo" in run("--help").stdout


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_benchmarks_quick_mode_writes_the_table(tmp_path):
    """The comparative benchmarks (python -m benchmarks, source checkout only) in --quick mode."""
    from pathlib import Path

    out = tmp_path / "bench.md"
    env = {**os.environ, "TQDM_DISABLE": "1"}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=230, env=env,
                          cwd=str(Path(__file__).resolve().parents[2]))
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    for target in ("start-up", "full frames", "crops", "resume", "memory"):
        assert f"| {target} |" in text


def installed_script() -> str:
    """The console script installed beside this interpreter."""
    from pathlib import Path

    script = Path(sys.executable).with_name("timelapse-pipes")
    if not script.is_file():
        pytest.fail(f"the timelapse-pipes console script is not installed beside {sys.executable}; "
                    f"pip install -e . first")
    return str(script)


@pytest.mark.slow
@pytest.mark.timeout(280)
def test_bench_measures_a_manifest_from_outside_the_checkout(synthetic, csv_writer, tmp_path):
    """The installed console script, run outside the checkout, on the user's manifest and options."""
    manifest = csv_writer([{"path": str(synthetic["zarr_v3"]), "channel": "0,1", "split": "train"},
                           {"path": str(synthetic["zarr_v2"]), "channel": "0,1", "split": "train"},
                           {"path": str(synthetic["ome_tiff"]), "channel": 1, "split": "val"}])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": ""}
    done = subprocess.run([installed_script(), "bench", str(manifest), "--json", "--seconds", "0.5",
                           "--workers", "0", "1", "--split", "train", "--num-timepoints", "2",
                           "--crop", "2,32,32", "--batch-size", "2", "--samples-per-epoch", "8"],
                          capture_output=True, text=True, timeout=270, env=env, cwd=str(elsewhere))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    settings = {(row["method"], row["workers"]) for row in result["rows"]}
    assert settings == {("thread", 0), ("thread", 1), ("process", 1)}
    for row in result["rows"]:
        assert row["samples_per_s"] > 0 and row["mb_per_s"] > 0 and row["batches"] >= 1
        assert row["seconds"] >= 0.5
        assert row["bytes"] == row["samples"] * 2 * 2 * 2 * 32 * 32 * 4  # T=2, C=2, 2x32x32 float32
        assert row["samples"] == 2 * row["batches"]
    assert any(row["epochs"] > 1 for row in result["rows"])  # 8-sample epochs cycle within 0.5 s
    best = result["recommendation"]
    assert (best["worker_method"], best["num_workers"]) in settings
    assert result["cpu_count"] == os.cpu_count()


@pytest.mark.slow
def test_bench_table_and_usage_errors(synthetic, csv_writer, tmp_path):
    manifest = csv_writer([{"path": str(synthetic["tiff"]), "channel": 0}])
    done = run("bench", str(manifest), "--split-column", "none", "--seconds", "0.3", "--workers", "0",
               "--methods", "thread", "--crop", "16,16", cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].split()[:5] == ["method", "workers", "samples/s", "MB/s", "batches"]
    assert lines[1].split()[:2] == ["thread", "0"] and float(lines[1].split()[2]) > 0
    assert "recommended: num_workers=0, worker_method='thread'" in done.stdout
    assert run("bench").returncode == 2
    assert run("bench", str(manifest), "--crop", "1,2,3,4").returncode == 2
    assert run("bench", str(manifest), "--seconds", "0").returncode == 2
    missing = run("bench", str(tmp_path / "nope.csv"), "--seconds", "0.1")
    assert missing.returncode == 1 and "nope.csv" in missing.stderr


def test_bench_recommendation_prefers_fewer_workers_within_5_percent():
    from timelapse_pipes.cli.bench import (
        Measurement,
        default_worker_counts,
        recommend,
        settings,
    )

    def row(method: str, workers: int, samples: int) -> Measurement:
        return Measurement(method, workers, samples, samples, samples * 1000, 1.0, 1, 0.1)

    rows = [row("thread", 0, 100), row("thread", 1, 190), row("thread", 2, 200), row("process", 2, 199)]
    assert recommend(rows)["num_workers"] == 1 and recommend(rows)["worker_method"] == "thread"
    assert recommend(rows)["best_samples_per_s"] == 200
    rows = [row("thread", 0, 100), row("thread", 2, 150), row("process", 2, 300)]
    assert (recommend(rows)["worker_method"], recommend(rows)["num_workers"]) == ("process", 2)
    assert settings([0, 1, 1, 2], ["thread", "process"]) == [("thread", 0), ("thread", 1), ("thread", 2),
                                                              ("process", 1), ("process", 2)]
    assert default_worker_counts(2) == [0, 1, 2] and default_worker_counts(1) == [0, 1]
    assert default_worker_counts(64) == [0, 1, 2, 4]


def test_preview_shows_rows_that_weights_never_draw(shared_data, tmp_path):
    """Preview plans each row's own sample: a weight of 0 keeps a row out of training, not out of view."""
    from timelapse_pipes.cli.preview import render_preview

    manifest = tmp_path / "m.csv"
    manifest.write_text("path,weight\n"
                        f"{shared_data / 'nd2' / 'example-zstack.nd2'},0\n"
                        f"{shared_data / 'ome-tiff' / 'time-series.ome.tif'},1\n")
    shown = render_preview(str(manifest), str(tmp_path / "p.png"), split_column=None, num_timepoints=2, tile=32)
    assert shown["failures"] == []
    assert shown["labels"][0].startswith("row 1: T=[0] C=[0] Z=11")
    assert shown["labels"][1].startswith("row 2: T=[0, 3]")
