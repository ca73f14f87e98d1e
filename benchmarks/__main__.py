"""``python -m benchmarks``: run the benchmarks and write the markdown report.

    python -m benchmarks --quick                     # tiny sizes, < 60 s on 2 cores (CI)
    python -m benchmarks --repeats 5 --out docs/benchmarks.md
    python -m benchmarks --only startup --rows 10000 --frames 100 1000
    python -m benchmarks --only zarr_engines --out -  # not in the default run (process loaders: minutes)
"""

from __future__ import annotations

import argparse
import gc
import shlex
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

SUITES = ("startup", "frames", "small", "decoders", "crops", "placement", "resume", "memory", "scaling",
          "zarr_engines", "zarr_s3")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes for CI (< 60 s on 2 cores)")
    parser.add_argument("--repeats", type=int, help="interleaved rounds per measurement (median reported)")
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown report path ('-' for stdout)")
    parser.add_argument("--only", nargs="+", choices=SUITES, help="run only these measurements")
    parser.add_argument("--rows", type=int, help="start-up manifest rows (target 10000)")
    parser.add_argument("--frames", type=int, nargs="+", help="start-up frames per file, e.g. 100 1000")
    parser.add_argument("--baseline-rows", type=int, help="rows baseline 1's init is timed on (then extrapolated)")
    parser.add_argument("--samples", type=int, help="timed samples per round, full frames and scaling")
    parser.add_argument("--frame-zyx", type=_ints, help="full-frame size Z,Y,X (e.g. 16,512,512)")
    parser.add_argument("--stream-frames", type=int, help="timepoints per full-frame file")
    parser.add_argument("--crop-zyx", type=_ints, help="frame size Z,Y,X for the crop benchmark")
    parser.add_argument("--crop-roi", type=_ints, help="crop size Z,Y,X")
    parser.add_argument("--crop-chunks", type=_ints, nargs="+",
                        help="OME-Zarr chunk layouts T,C,Z,Y,X for the crop files (one file each)")
    parser.add_argument("--crop-samples", type=int, help="timed crops per round (timelapse_pipes, raw)")
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts for scaling (default 1 2)")
    parser.add_argument("--shared-data", default=None,
                        help="folder holding nd2/example-timelapse.nd2 (default: ../shared/data)")
    parser.add_argument("--tmp", default=None, help="folder for synthetic data (default: a new temp dir)")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile the library's full-frame OME-Zarr loop and append the top entries")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)

    from . import (
        crops,
        decoders,
        frames,
        memory,
        placement,
        resume,
        scaling,
        small_frames,
        startup,
        zarr_engines,
        zarr_s3,
    )
    from .measure import clock, log
    from .report import load_average, machine_info, render
    from .settings import preset

    gc.freeze()  # the imported libraries' objects: later collections (between runs) stay cheap
    started = clock()
    settings = preset(
        args.quick, repeats=args.repeats, rows=args.rows,
        frames=tuple(args.frames) if args.frames else None, baseline_rows=args.baseline_rows,
        samples=args.samples, frame_zyx=args.frame_zyx, stream_frames=args.stream_frames,
        crop_zyx=args.crop_zyx, crop_roi=args.crop_roi,
        crop_chunks=tuple(args.crop_chunks) if args.crop_chunks else None,
        crop_samples=args.crop_samples, workers=tuple(args.workers) if args.workers else None,
        suites=tuple(args.only) if args.only else None,
    )
    repo = Path(__file__).resolve().parent.parent
    shared = Path(args.shared_data) if args.shared_data else repo.parent / "shared" / "data"
    info = machine_info()
    folder = Path(args.tmp) if args.tmp else Path(tempfile.mkdtemp(prefix="timelapse-pipes-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    log(f"synthetic data in {folder}; settings: {settings.describe()}")
    tables, targets, extra = [], [], []
    try:
        mark = [clock()]

        def add(name: str, result: tuple) -> None:
            tables.extend(result[0])
            targets.extend(result[1])
            log(f"{name}: done in {clock() - mark[0]:.1f} s")
            gc.freeze()
            mark[0] = clock()

        if "startup" in settings.suites:
            add("startup", startup.run(settings, folder))
        datasets = []
        if {"frames", "decoders", "resume", "scaling"} & set(settings.suites) or args.profile:
            datasets = frames.stream_datasets(settings, folder, shared)
        if "frames" in settings.suites:
            add("frames", frames.run(settings, datasets))
        if "small" in settings.suites:
            add("small frames", small_frames.run(settings, shared))
        if "decoders" in settings.suites:
            layouts = [(data.short, data.kind, data.array_path) for data in datasets if data.kind != "nd2"]
            add("decoders", decoders.run(settings, layouts, folder))
        if "crops" in settings.suites:
            add("crops", crops.run(settings, folder))
        if "placement" in settings.suites:
            add("placement", placement.run(settings, folder))
        if "resume" in settings.suites:
            add("resume", resume.run(settings, datasets[0].manifest))
        if "memory" in settings.suites:
            add("memory", memory.run(settings, folder))
        if "scaling" in settings.suites:
            add("scaling", scaling.run(settings, datasets[0]))
        if "zarr_engines" in settings.suites:
            add("zarr engines", zarr_engines.run(settings, folder))
        if "zarr_s3" in settings.suites:
            add("zarr_s3", zarr_s3.run(settings, folder))
        if args.profile:
            from .profiling import profile_library

            extra = profile_library(settings, datasets[0])
    finally:
        if not args.tmp:
            shutil.rmtree(folder, ignore_errors=True)
    elapsed = clock() - started
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    text = render(info, settings.describe(), command.strip(), tables, targets, elapsed, load_average(), extra,
                  quick=settings.quick)
    if args.out == "-":
        print(text)
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        log(f"wrote {out} in {elapsed:.0f} s")
    for target in targets:
        log(f"target {target.name}: {target.measured} -> {target.met}")
    return 0


if __name__ == "__main__":  # required: process workers start through forkserver
    sys.exit(main())
