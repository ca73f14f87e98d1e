"""Every error a user can cause reaches the command line as one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

ND2 = "nd2/example-timelapse.nd2"  # 64 x 64 frames
MM = "ome-tiff/181003_multi_pos_time_course_1_MMStack.ome.tif"  # 256 x 256 frames


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TQDM_DISABLE": "1"}
    return subprocess.run([sys.executable, "-m", "timelapse_pipes", *args], capture_output=True, text=True,
                          timeout=240, env=env)


def error_line(done: subprocess.CompletedProcess) -> str:
    """The one error line, after checking there is exactly one and no traceback."""
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-2000:]
    return errors[0]


def test_bench_on_mixed_frame_sizes_names_both_rows_and_the_fixes(shared_data: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "mixed.csv"
    manifest.write_text(f"path,split\n{shared_data / ND2},train\n{shared_data / MM},train\n")
    line = error_line(run("bench", str(manifest), "--workers", "0", "--seconds", "0.2"))
    assert f"{manifest} row 1 ({shared_data / ND2})" in line and "[1, 1, 64, 64]" in line, line
    assert f"{manifest} row 2 ({shared_data / MM})" in line and "[1, 1, 256, 256]" in line, line
    assert "batch_size=1" in line and "crop" in line and "resize" in line, line


def test_bench_with_a_crop_fits_mixed_frame_sizes(shared_data: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "mixed.csv"
    manifest.write_text(f"path,split\n{shared_data / ND2},train\n{shared_data / MM},train\n")
    done = run("bench", str(manifest), "--workers", "0", "--seconds", "0.2", "--crop", "32,32")
    assert done.returncode == 0, done.stderr[-2000:]


def test_an_unwritable_preview_output_is_one_line(synthetic: dict[str, Path], tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,split\n{synthetic['zarr_v3']},train\n")
    target = tmp_path / "no-such-folder" / "preview.png"
    line = error_line(run("preview", str(manifest), "-o", str(target), "--tile", "16"))
    assert str(target) in line and "No such file or directory" in line, line


def test_an_unwritable_index_names_the_index_path(synthetic: dict[str, Path], tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,split\n{synthetic['zarr_v3']},train\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "index.json"  # a folder that is a file: cannot be created
    line = error_line(run("index", str(manifest), "-o", str(target), "--workers", "1"))
    assert str(target) in line, line


def test_a_bad_manifest_row_is_one_line(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,split,stop\nx.nd2,train,-5\n")
    line = error_line(run("bench", str(manifest), "--workers", "0", "--seconds", "0.2"))
    assert f"{manifest} row" in line and "'stop'" in line, line
