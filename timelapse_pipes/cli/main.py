"""The ``timelapse-pipes`` command: demo, inspect, index, preview, bench.

Exit codes: 0 success; 1 problems found (inspect, preview rows that failed), an error the user can
fix (the library's own errors, and files or folders that cannot be read or written) or a demo whose
verification failed; 2 usage errors; 130 interrupted. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from ..errors import TimelapsePipesError
from ..graph.loader import unwrap_worker_error

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return 0 if run_demo(args.out, num_workers=args.workers) else 1


def _inspect(args: argparse.Namespace) -> int:
    from .inspect import inspect_manifest, render_report

    report = inspect_manifest(args.manifest, split=args.split, spatial_dims=args.spatial_dims,
                              num_timepoints=args.num_timepoints,
                              timepoint_sampling=args.timepoint_sampling, index=args.index,
                              scheduler=args.scheduler)
    print(json.dumps(report, indent=2) if args.json else render_report(report))
    return 1 if report["problems"] else 0


def _index(args: argparse.Namespace) -> int:
    from ..index.build import build_index, render_summary

    summary = build_index(args.manifest, out=args.output, scheduler=args.scheduler, split=args.split,
                          spatial_dims=args.spatial_dims, num_timepoints=args.num_timepoints,
                          timepoint_sampling=args.timepoint_sampling, verify=args.verify,
                          n_workers=args.workers, threads_per_worker=args.threads_per_worker,
                          flush_every=args.flush_every)
    print(json.dumps(summary, indent=2) if args.json else render_summary(summary))
    return 1 if summary["problems"] else 0


def _preview(args: argparse.Namespace) -> int:
    from .preview import render_preview

    images = {"image_columns": dict(args.image)} if args.image else {}
    shown = render_preview(args.manifest, args.output, split=args.split, rows=args.rows,
                           num_timepoints=args.num_timepoints, tile=args.tile, seed=args.seed,
                           split_column=args.split_column, outline=args.outline, **images)
    for row, message in shown["failures"]:
        print(f"row {row}: {message}", file=sys.stderr)
    failed = f", {len(shown['failures'])} row(s) failed" if shown["failures"] else ""
    print(f"wrote {shown['output']}: {shown['rows']} rows x {shown['columns']} tiles "
          f"(timepoint x channel){failed}")
    return 1 if shown["failures"] else 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import render_table, run_throughput

    options: dict[str, Any] = {"split": args.split, "split_column": args.split_column,
                               "batch_size": args.batch_size, "num_timepoints": args.num_timepoints,
                               "timepoint_sampling": args.timepoint_sampling, "seed": args.seed}
    spatial_dims = args.spatial_dims
    if args.crop is not None:
        if spatial_dims is None:
            spatial_dims = len(args.crop)  # Y,X implies 2-D samples, Z,Y,X 3-D
        options["crop"] = {"roi_size": list(args.crop), "mode": args.crop_mode}
    if spatial_dims is not None:
        options["spatial_dims"] = spatial_dims
    if args.samples_per_epoch is not None:
        options["samples_per_epoch"] = args.samples_per_epoch
    result = run_throughput(args.manifest, workers=args.workers, methods=args.methods, seconds=args.seconds,
                            progress=_stderr, **options)
    print(json.dumps(result, indent=2) if args.json else render_table(result))
    return 0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _crop(text: str) -> tuple[int, ...]:
    """``Z,Y,X`` or ``Y,X`` positive sizes."""
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--crop {text!r} must be Z,Y,X or Y,X integers, e.g. 16,128,128") from None
    if len(sizes) not in (2, 3) or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--crop {text!r} must be 2 or 3 positive sizes (Y,X or Z,Y,X)")
    return sizes


def _image(text: str) -> tuple[str, str | dict[str, Any]]:
    """``KEY=COLUMN`` or ``KEY={"path": COLUMN, ...}`` (JSON): one entry of ``image_columns``."""
    key, sep, spec = text.partition("=")
    if not sep or not key or not spec:
        raise argparse.ArgumentTypeError(f"--image {text!r} must be KEY=COLUMN, e.g. mask=mask_path")
    if not spec.lstrip().startswith("{"):
        return key, spec
    try:
        return key, json.loads(spec)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"--image {text!r}: {spec!r} is not a JSON object ({error})") from None


def _column(text: str) -> str | None:
    """A column name; ``none`` for no such column."""
    return None if text.lower() == "none" else text


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number > 0")
    return value


def _positive_int(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= 1")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="timelapse-pipes",
        description="Stream microscopy timelapses into PyTorch: resumable, sharded, no conversion.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="write synthetic timelapses, stream, checkpoint, resume, verify")
    demo.add_argument("--out", help="folder for the demo files (default: a new temporary folder)")
    demo.add_argument("--workers", type=int, default=2, help="loader worker threads (default 2)")
    demo.set_defaults(run=_demo)

    inspect = commands.add_parser("inspect", help="validate a manifest and open each file once")
    inspect.add_argument("manifest", help="CSV path or URL")
    inspect.add_argument("--split", default=None, help="only rows of this split (default: all rows)")
    inspect.add_argument("--spatial-dims", type=int, default=None, choices=(2, 3),
                         help="also check every row fits 2-D or 3-D samples")
    inspect.add_argument("--num-timepoints", type=int, default=1)
    inspect.add_argument("--timepoint-sampling", default="random", choices=("random", "sequential", "uniform"))
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    inspect.add_argument("--index", default=None, metavar="PATH",
                         help="check on dask (as `index` does) and write or update this index")
    inspect.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="check on the dask cluster at ADDRESS (default with --index: a local cluster)")
    inspect.set_defaults(run=_inspect)

    index = commands.add_parser(
        "index", help="read every file's metadata on dask into an index for metadata_cache",
        description="Read the metadata of every (file, scene, level) of MANIFEST in parallel on dask.distributed "
                    "and write it to an index that build_loader(metadata_cache=...) reads: loaders then open no "
                    "file to plan or check a row. A rerun reads only files missing from the index or changed; "
                    "problems are listed as `inspect` does (exit 1 when there are any; the index is written "
                    "either way).")
    index.add_argument("manifest", help="CSV path or URL")
    index.add_argument("-o", "--output", required=True, help="the index file to write or update (local)")
    index.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="an existing dask scheduler, e.g. tcp://10.0.0.1:8786 (default: a local cluster)")
    index.add_argument("--workers", type=_positive_int, default=None,
                       help="local cluster worker processes (default: one per CPU)")
    index.add_argument("--threads-per-worker", type=_positive_int, default=None,
                       help="local cluster threads per worker (default 4; the work waits on storage)")
    index.add_argument("--split", default=None, help="only rows of this split (default: all rows)")
    index.add_argument("--spatial-dims", type=int, default=None, choices=(2, 3),
                       help="also check every row fits 2-D or 3-D samples")
    index.add_argument("--num-timepoints", type=_positive_int, default=1)
    index.add_argument("--timepoint-sampling", default="random", choices=("random", "sequential", "uniform"))
    index.add_argument("--verify", action="store_true",
                       help="make loaders check each file's size+mtime/ETag instead of trusting the index")
    index.add_argument("--flush-every", type=_positive_int, default=256,
                       help="append new entries to the index every N entries (default 256)")
    index.add_argument("--json", action="store_true", help="print the summary as JSON")
    index.set_defaults(run=_index)

    preview = commands.add_parser("preview", help="PNG montage of sampled frames per row and channel")
    preview.add_argument("manifest", help="CSV path or URL")
    preview.add_argument("-o", "--output", default="preview.png", help="PNG to write (default preview.png)")
    preview.add_argument("--split", default=None, help="rows of this split (default: all rows)")
    preview.add_argument("--split-column", type=_column, default="split",
                         help="split column name (default split; 'none': the manifest has none)")
    preview.add_argument("--rows", type=_positive_int, default=8, help="manifest rows to show (default 8)")
    preview.add_argument("--num-timepoints", type=_positive_int, default=3, help="evenly spaced frames per row")
    preview.add_argument("--tile", type=_positive_int, default=128, help="tile size in pixels")
    preview.add_argument("--seed", type=int, default=0)
    preview.add_argument("--image", type=_image, action="append", metavar="KEY=COLUMN",
                         help="a further image of each row (image_columns), e.g. mask=mask_path, or "
                              "KEY='{\"path\": COLUMN, \"resize\": \"nearest\"}'; repeat for each image")
    preview.add_argument("--outline", nargs="+", default=None, metavar="KEY",
                         help="images whose label outlines to draw over the raw tiles "
                              "(default: every --image; 'none': none)")
    preview.set_defaults(run=_preview)

    bench = commands.add_parser(
        "bench", help="samples/s and MB/s of your manifest per worker count and method",
        description="Measure build_loader on MANIFEST with your options for each worker count and method, "
                    "then recommend num_workers and worker_method. (The comparative benchmarks against "
                    "baselines are `python -m benchmarks` in the source checkout.)")
    bench.add_argument("manifest", help="CSV path or URL")
    bench.add_argument("--split", default=None, help="rows of this split (default: all rows)")
    bench.add_argument("--split-column", type=_column, default="split",
                       help="split column name (default split; 'none': the manifest has none)")
    bench.add_argument("--batch-size", type=_positive_int, default=4, help="default 4")
    bench.add_argument("--num-timepoints", type=_positive_int, default=1, help="default 1")
    bench.add_argument("--timepoint-sampling", default="random", choices=("random", "sequential", "uniform"))
    bench.add_argument("--spatial-dims", type=int, default=None, choices=(2, 3),
                       help="2 (YX) or 3 (ZYX); default: the library's (3), or 2 for a Y,X --crop")
    bench.add_argument("--crop", type=_crop, default=None, metavar="Z,Y,X",
                       help="read only a region of this size (Z,Y,X or Y,X)")
    bench.add_argument("--crop-mode", default="random", choices=("random", "center"))
    bench.add_argument("--samples-per-epoch", type=_positive_int, default=None,
                       help="samples per epoch (default: one per manifest row)")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--workers", type=_count, nargs="+", default=None, metavar="N",
                       help="worker counts to measure (default 0 1 2 4, capped at the CPU count)")
    bench.add_argument("--methods", nargs="+", default=["thread", "process"], choices=("thread", "process"),
                       help="worker methods (default thread process; process only for counts >= 1)")
    bench.add_argument("--seconds", type=_positive_float, default=5.0,
                       help="timed seconds per setting, after the first batch (default 5)")
    bench.add_argument("--json", action="store_true", help="print rows and recommendation as JSON")
    bench.set_defaults(run=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``timelapse-pipes`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except TimelapsePipesError as error:
        return _fail(str(unwrap_worker_error(error)))
    except OSError as error:  # a path given on the command line that cannot be read or written
        where = f"{error.filename}: " if error.filename else ""
        return _fail(f"{where}{error.strerror or error}")
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)


def _fail(message: str, code: int = 1) -> int:
    """Print ``message`` as one line on stderr and return the exit code."""
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
