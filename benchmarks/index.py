"""Building the metadata index on dask.distributed, and what a loader gains from it.

    python -m benchmarks.index [--files 2000] [--workers 1 2 4 8] [--latency-ms 20] [--repeats 1]
                               [--plan-rows 100] [--out docs/benchmarks-index.md]

* Index build throughput (files/s) with 1, 2, 4 and 8 dask workers, as threads (one worker process
  with N threads) and as processes (N single-thread worker processes), on ``--files`` small
  OME-TIFF files on S3 (moto's server in its own process, behind the loopback proxy of
  :mod:`benchmarks.s3_overlap` that delays every request by ``--latency-ms``) and on a local folder.
  Each cluster is started and warmed (imports done) before its builds are timed; each build writes
  a fresh index and must read every file with no problem.
* A loader given the index: files opened up to its first batch, and the per-row planning cost of
  one process (the metadata stage over ``--plan-rows`` rows) with the index and without it.

Every figure comes from the same run; the report is written to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .measure import clock, fmt, log, median, ratio
from .s3_overlap import _DelayingProxy, _free_port

SERVER_START_S = 30
FIRST_BATCH_REPEATS = 3
SHAPE = (4, 1, 1, 32, 32)  # T, C, Z, Y, X of each small file


def _small_file(folder: Path) -> Path:
    """One small OME-TIFF timelapse (a few KB): the file every row points at a copy of."""
    from timelapse_pipes.testing import noise_movie, write_ome_tiff

    return write_ome_tiff(folder / "small.ome.tiff", noise_movie(SHAPE, 0))


def _serve_proxy(upstream: tuple[str, int], latency_s: float, ports: Any) -> None:
    """The latency proxy of :mod:`benchmarks.s3_overlap`, in a process of its own."""
    proxy = _DelayingProxy(upstream, latency_s)
    ports.put(proxy.server_address[1])
    proxy.serve_forever()


@contextmanager
def _s3_behind_proxy(latency_ms: float) -> Iterator[tuple[dict, dict, list[int]]]:
    """moto's S3 server and the latency proxy, each in its own process (so their CPU is not the
    scheduler's); yields (direct options, options through the proxy, their pids)."""
    import multiprocessing

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    proxy = context.Process(target=_serve_proxy, args=(("127.0.0.1", port), latency_ms / 1000, ports), daemon=True)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        proxy.start()
        proxy_port = ports.get(timeout=SERVER_START_S)
        yield ({"endpoint_url": f"http://127.0.0.1:{port}"},
               {"endpoint_url": f"http://127.0.0.1:{proxy_port}"}, [server.pid, proxy.pid])
    finally:
        if proxy.pid is not None:
            proxy.terminate()
            proxy.join(timeout=10)
        server.terminate()
        server.wait(timeout=10)


def _write_copies(source: Path, folder: Path, count: int) -> Path:
    """``count`` copies of ``source`` and a manifest of them (relative paths)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"file{n:05}.ome.tiff" for n in range(count)]
    for name in names:
        shutil.copy(source, folder / name)
    manifest = folder / "manifest.csv"
    manifest.write_text("path\n" + "".join(f"{name}\n" for name in names))
    return manifest


def _upload(folder: Path, options: dict) -> str:
    """Put the folder's files in a new bucket (directly, not through the proxy); the manifest's URL."""
    import s3fs

    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    bucket = f"index-bench-{uuid.uuid4().hex[:8]}"
    fs.mkdir(bucket)
    fs.put([str(p) for p in sorted(folder.iterdir())], f"{bucket}/")
    return f"s3://{bucket}/manifest.csv"


def _shape(workers: int, mode: str) -> tuple[int, int]:
    """(processes, threads per process) of a cluster of ``workers`` dask worker threads."""
    if mode == "threads":
        return 1, workers
    if mode == "processes":
        return workers, 1
    processes = os.cpu_count() or 1  # "default": what `timelapse-pipes index` starts
    return processes, workers // processes


@contextmanager
def _cluster(workers: int, mode: str) -> Iterator[Any]:
    """A warmed LocalCluster: ``threads``: 1 process x N threads; ``processes``: N processes x 1 thread;
    ``default``: one process per CPU, N threads in all (the command line's local cluster)."""
    import distributed

    processes, threads = _shape(workers, mode)
    cluster = distributed.LocalCluster(n_workers=processes, threads_per_worker=threads, processes=True,
                                       dashboard_address=None, host="127.0.0.1")
    client = distributed.Client(cluster, set_as_default=False)
    try:
        client.wait_for_workers(processes)
        client.run(_warm)
        yield client
    finally:
        client.close()
        cluster.close()


def _warm() -> None:
    """Import what an index task imports (torch, bioio, the OME-TIFF reader), once per worker."""
    import bioio_ome_tiff  # noqa: F401

    import timelapse_pipes.index.tasks  # noqa: F401


def _cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds of these processes (Linux /proc; None elsewhere)."""
    try:
        total = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _build(client: Any, manifest: str, options: dict | None, out: Path, files: int,
           server_pids: list[int]) -> tuple[float, float | None, float | None]:
    """Files/s of one index build into a fresh ``out``, and CPU ms per file of the workers and of the
    rest (this process, with the scheduler and client, and the S3 server and proxy)."""
    import timelapse_pipes as tp

    out.unlink(missing_ok=True)
    groups = [list(client.run(os.getpid).values()), [os.getpid(), *server_pids]]
    before = [_cpu_seconds(pids) for pids in groups]
    started = clock()
    summary = tp.build_index(manifest, out=str(out), client=client, storage_options=options, progress=False)
    seconds = clock() - started
    after = [_cpu_seconds(pids) for pids in groups]
    if summary["read"] != files or summary["problems"]:
        raise RuntimeError(f"index build read {summary['read']} of {files} files; problems: {summary['problems'][:3]}")
    cpu = [None if b is None or a is None else 1000 * (a - b) / files for b, a in zip(before, after)]
    return files / seconds, cpu[0], cpu[1]


def _first_batch(manifest: str, options: dict | None, index: str | None) -> dict[str, float]:
    """Seconds to the first batch (batch_size 1, no workers), files opened, metadata reads."""
    import timelapse_pipes as tp

    started = clock()
    loader = tp.build_loader(manifest, split=None, storage_options=options, metadata_cache=index, batch_size=1,
                             num_workers=0, prefetch=0, spatial_dims=2, seed=int(time.time()))
    next(iter(loader))
    seconds = clock() - started
    cache = next(s for s in loader.prepared.pipeline.stages if isinstance(s, tp.MetadataCacher)).metadata
    result = {"seconds": seconds, "opens": loader.prepared.readers.opens, "metadata_reads": cache.files_opened}
    loader.close()
    return result


def _first_batch_in_fresh_process(manifest: str, options: dict | None, index: str | None) -> dict[str, float]:
    """:func:`_first_batch` in a new interpreter: nothing imported, cached or connected beforehand."""
    import json

    code = ("import json, sys, warnings; warnings.filterwarnings('ignore'); "
            "from benchmarks.index import _first_batch; print(json.dumps(_first_batch(*json.loads(sys.argv[1]))))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps([manifest, options, index])], capture_output=True,
                          text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _planning(manifest: str, options: dict | None, index: str | None, rows: int) -> tuple[float | None, float]:
    """One process's metadata stage over ``rows`` rows (what every worker of every rank pays per epoch):
    seconds to load the index (None without one), then ms per row."""
    import timelapse_pipes as tp
    from timelapse_pipes.config.manifest import read_manifest

    manifest_rows = read_manifest(manifest, split=None, storage_options=options).rows[:rows]
    cache, readers = tp.MetadataCache(index, None, options), tp.ReaderCache()
    started = clock()
    if index is not None and not cache.is_index:  # loads it: one HEAD, the staged download, the parse
        raise RuntimeError(f"{index} is not an index")
    loaded = clock()
    for row in manifest_rows:
        cache.get(row, readers)
    done = clock()
    readers.close()
    return (loaded - started if index is not None else None), 1000 * (done - loaded) / len(manifest_rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.index", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000, help="small files to index (default 2000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=1, help="rounds over every cluster (median reported)")
    parser.add_argument("--plan-rows", type=int, default=100, help="rows of the per-row planning measurement")
    parser.add_argument("--out", default="docs/benchmarks-index.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    import warnings

    warnings.filterwarnings("ignore")

    work = Path(tempfile.mkdtemp(prefix="timelapse-pipes-indexbench-"))
    top = max(args.workers)
    configs = [("threads", 1)] + [(mode, n) for n in args.workers if n > 1 for mode in ("threads", "processes")]
    if top % (os.cpu_count() or 1) == 0:
        configs.append(("default", top))
    runs: dict[tuple[str, str, int], list[tuple[float, float | None, float | None]]] = {}
    load = [os.getloadavg()[0]]
    started = clock()
    try:
        local = _write_copies(_small_file(work), work / "local", args.files)
        with _s3_behind_proxy(args.latency_ms) as (direct, proxied, server_pids):
            remote = _upload(local.parent, direct)
            log(f"{args.files} files local and on S3 ({args.latency_ms:g} ms per request)")
            for round_index in range(args.repeats):
                for mode, workers in configs:
                    with _cluster(workers, mode) as client:
                        for storage, manifest, options, pids in (("s3", remote, proxied, server_pids),
                                                                 ("local", str(local), None, [])):
                            value = _build(client, manifest, options, work / f"{storage}.index.json",
                                           args.files, pids)
                            runs.setdefault((storage, mode, workers), []).append(value)
                            log(f"round {round_index + 1}: {storage} {workers} {mode}: {value[0]:.1f} files/s, "
                                f"CPU per file {fmt(value[1])} ms in workers, {fmt(value[2])} ms elsewhere")
                    load.append(os.getloadavg()[0])
            index = work / "s3.index.json"  # the last S3 build's
            import s3fs

            index_url = remote.rsplit("/", 1)[0] + "/manifest.index.json"
            s3fs.S3FileSystem(**direct, skip_instance_cache=True).put(str(index), index_url)
            first_runs: dict[str, list[dict]] = {"with the index (S3 URL)": [], "without an index": []}
            for _ in range(FIRST_BATCH_REPEATS):  # interleaved, each in a fresh process
                first_runs["with the index (S3 URL)"].append(_first_batch_in_fresh_process(remote, proxied, index_url))
                first_runs["without an index"].append(_first_batch_in_fresh_process(remote, proxied, None))
            first = {name: {key: median([run[key] for run in values]) for key in values[0]}
                     for name, values in first_runs.items()}
            plan_rows = min(args.plan_rows, args.files)
            planning = {"with the index (S3 URL)": _planning(remote, proxied, index_url, plan_rows),
                        "without an index": _planning(remote, proxied, None, plan_rows)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = _report(args, configs, runs, first, planning, plan_rows, load, clock() - started)
    Path(args.out).write_text(report)
    print(report)
    return 0


def _cluster_label(workers: int, mode: str) -> str:
    processes, threads = _shape(workers, mode)
    shape = f"{processes} process{'es' if processes > 1 else ''} x {threads} thread{'s' if threads > 1 else ''}"
    return shape + (" (the CLI's default shape)" if mode == "default" else "")


def _report(args: argparse.Namespace, configs: list, runs: dict, first: dict, planning: dict, plan_rows: int,
            load: list[float], seconds: float) -> str:
    med = {key: median([v[0] for v in values]) for key, values in runs.items()}
    cpu = {key: [median([v[n] for v in values if v[n] is not None]) for n in (1, 2)] for key, values in runs.items()}
    cpus = os.cpu_count() or 1
    lines = [
        "# Building the metadata index on dask",
        "",
        f"Generated by `python -m benchmarks.index --files {args.files} --workers "
        f"{' '.join(map(str, args.workers))} --latency-ms {args.latency_ms:g} --repeats {args.repeats}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ({seconds / 60:.0f} min), {cpus} CPUs shared with "
        f"other work (1-minute load average {min(load):.1f} to {max(load):.1f} during the run). {args.files} small "
        f"OME-TIFF timelapses ({'x'.join(map(str, SHAPE))} TCZYX uint16, 9 KB each), one manifest row each. "
        f"S3: moto's server in its own process on 127.0.0.1 behind the loopback proxy of `benchmarks.s3_overlap` "
        f"(in a process of its own), which delays every request by {args.latency_ms:g} ms. Each build runs "
        f"`build_index` on a started, warmed `LocalCluster` and writes a fresh index: per file its signature, "
        f"the open and metadata read and one decoded pixel, as `inspect` does (on S3 about 10 requests per "
        f"file, 8 of them the reader's own opens and reads). Median of {args.repeats} round(s); every cluster "
        f"runs its S3 and local builds back to back. CPU per file: the dask workers', and the rest's (the "
        f"client process with the scheduler, the S3 server and the proxy).",
        "",
        "| storage | dask workers | cluster | files/s | vs 1 worker | CPU per file: workers | CPU per file: the rest |",
        "|---|---|---|---|---|---|---|",
    ]
    for storage in ("s3", "local"):
        base = med.get((storage, "threads", 1))
        label = "S3 (moto + latency proxy)" if storage == "s3" else "local folder"
        for mode, workers in configs:
            if (storage, mode, workers) not in med:
                continue
            value = med[(storage, mode, workers)]
            workers_cpu, rest_cpu = cpu[(storage, mode, workers)]
            lines.append(f"| {label} | {workers} | {_cluster_label(workers, mode)} | {fmt(value)} | "
                         f"{fmt(ratio(value, base))}x | {fmt(workers_cpu)} ms | {fmt(rest_cpu)} ms |")
    one = med.get(("s3", "threads", 1))
    one_cpu = sum(v for v in cpu.get(("s3", "threads", 1), []) if v == v) or None
    ceiling = ratio(cpus * 1000 / one_cpu, one) if one and one_cpu else None
    lines += [
        "",
        f"On S3 one worker takes {fmt(1000 / one if one else None)} ms per file, of which {fmt(one_cpu)} ms is "
        f"CPU (the worker's and the rest's), so on {cpus} otherwise idle CPUs the CPU-bound ceiling is about "
        f"{fmt(ceiling)}x one worker; other work on the machine lowers it. Against a real object store the "
        f"server's and the proxy's CPU is not ours, so more of each file's time overlaps. A local folder has "
        f"no latency to overlap: its builds are CPU bound from the start.",
        "",
        "A loader given the index (`metadata_cache=` the index's S3 URL) against the same loader without one, "
        f"on the S3 manifest, batch_size 1, no workers; each in a fresh process, median of {FIRST_BATCH_REPEATS} "
        "interleaved runs:",
        "",
        "| | seconds to the first batch | files opened | metadata reads | loading the index, one process | "
        "planning cost per row, one process |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in first.items():
        load, per_row = planning[name]
        lines.append(f"| {name} | {result['seconds']:.2f} | {result['opens']:.0f} | {result['metadata_reads']:.0f} | "
                     f"{'—' if load is None else f'{load:.2f} s'} | {fmt(per_row)} ms |")
    lines += [
        "",
        f"The first batch opens exactly one file either way (the sample's); with the index its metadata comes "
        f"from the index, which the first batch also fetches (one HEAD, then a download the first time on "
        f"this machine: it is staged by ETag) and parses ({args.files} entries); most of either first batch "
        f"is the fresh process's lazy imports and connections. The planning cost is the metadata stage over "
        f"{plan_rows} rows in one process, after the index is loaded: without an index every worker process "
        "of every rank pays it for each row it meets, each epoch (process workers live per epoch); with the "
        "index it is a lookup, with no request at all.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
