"""The ``timelapse-pipes`` command: demo, inspect, preview, bench.

Exit codes: 0 success, 1 problems found (inspect) or demo verification failed, 2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .errors import TimelapsePipesError

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return 0 if run_demo(args.out, num_workers=args.workers) else 1


def _inspect(args: argparse.Namespace) -> int:
    from .inspect import inspect_manifest, render_report

    report = inspect_manifest(args.manifest, split=args.split, spatial_dims=args.spatial_dims,
                              num_timepoints=args.num_timepoints,
                              timepoint_sampling=args.timepoint_sampling)
    print(json.dumps(report, indent=2) if args.json else render_report(report))
    return 1 if report["problems"] else 0


def _preview(args: argparse.Namespace) -> int:
    from .preview import render_preview

    shown = render_preview(args.manifest, args.output, split=args.split, rows=args.rows,
                           num_timepoints=args.num_timepoints, spatial_dims=args.spatial_dims,
                           tile=args.tile, seed=args.seed, split_column=args.split_column)
    print(f"wrote {shown['output']}: {shown['rows']} rows x {shown['columns']} tiles (timepoint x channel)")
    return 0


def _bench(args: argparse.Namespace) -> int:
    return run_benchmarks(args.bench_args)


def run_benchmarks(bench_args: Sequence[str]) -> int:
    """Run ``python -m benchmarks`` with ``bench_args`` from the source checkout in the cwd."""
    import os
    import runpy

    if not os.path.isfile(os.path.join("benchmarks", "__main__.py")):
        print("error: the benchmarks live in the source checkout; run this from its root "
              "(or run `python -m benchmarks` there).", file=sys.stderr)
        return 2
    sys.path.insert(0, os.getcwd())
    sys.argv = ["python -m benchmarks", *bench_args]
    try:
        runpy.run_module("benchmarks", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


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
    inspect.set_defaults(run=_inspect)

    preview = commands.add_parser("preview", help="PNG montage of sampled frames per row and channel")
    preview.add_argument("manifest", help="CSV path or URL")
    preview.add_argument("-o", "--output", default="preview.png", help="PNG to write (default preview.png)")
    preview.add_argument("--split", default=None, help="rows of this split (default: all rows)")
    preview.add_argument("--split-column", default="split", help="split column name (default: split)")
    preview.add_argument("--rows", type=int, default=8, help="manifest rows to show (default 8)")
    preview.add_argument("--num-timepoints", type=int, default=3, help="evenly spaced frames per row")
    preview.add_argument("--spatial-dims", type=int, default=2, choices=(2, 3),
                         help="3 for Z-stacks (max-projected), 2 for YX files (default)")
    preview.add_argument("--tile", type=int, default=128, help="tile size in pixels")
    preview.add_argument("--seed", type=int, default=0)
    preview.set_defaults(run=_preview)

    bench = commands.add_parser("bench", help="run the benchmarks (python -m benchmarks) from a source checkout",
                                add_help=False)
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for python -m benchmarks")
    bench.set_defaults(run=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``timelapse-pipes`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # everything after `bench` belongs to the benchmarks' own parser
        return run_benchmarks(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except TimelapsePipesError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
