"""``build_index``: read every (file, scene, level) of a manifest on dask and write the metadata index.

The index is the metadata cache that ``build_loader(metadata_cache=...)`` reads
(:mod:`timelapse_pipes.cache_file`). A build:

1. reads what ``out`` already holds and rewrites it atomically as one document, marked incomplete;
2. sends every file to the cluster in batches (:mod:`timelapse_pipes.index.tasks`); a file whose
   signature matches entries the index already has is not opened;
3. appends the new entries in chunks as results arrive (every ``flush_every`` files or
   ``flush_interval_s`` seconds), so a killed build keeps what it appended and a rerun reads only
   the files still missing or changed;
4. checks the rows of unchanged files against their stored metadata (no I/O), then rewrites ``out``
   as one document: entries sorted by key, stale versions of re-read files dropped, the problems
   of every row, marked complete.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..config.checks import check_row_fits, inspect_options, problem, problem_lines
from ..config.manifest import Manifest, ManifestColumns, read_manifest
from ..config.options import SampleOptions
from ..errors import ConfigError, TimelapsePipesError
from ..reading.cache.file_format import (
    CACHE_VERSION,
    CacheContents,
    append_entries,
    key_fields,
    read_cache,
    write_cache,
)
from ..reading.storage import is_remote, redact
from ..records import ImageMetadata
from .cluster import dask_client
from .tasks import FileResult, FileTask, TaskSettings, index_files, row_key

__all__ = ["build_index", "run_index", "render_summary", "IndexRun", "INDEX_FORMAT"]

INDEX_FORMAT = "timelapse-pipes-index"
FORMAT_KEY, MANIFEST_KEY, SPLIT_KEY, READER_KEY = "format", "manifest", "split", "reader"
VERIFY_KEY, CHECKS_KEY, ROWS_KEY, COMPLETE_KEY = "verify", "checks", "rows", "complete"
TASKS_PER_THREAD = 16  # batches per dask thread: small enough to balance, large enough to amortize
MAX_FILES_PER_TASK = 64


@dataclass
class IndexRun:
    """The outcome of one build: per-row metadata and problems, and what was read or reused."""

    out: str
    manifest: Manifest
    metadata: dict[int, ImageMetadata] = field(default_factory=dict)  # by position in the manifest
    problems: list[dict] = field(default_factory=list)  # inspect's problems, in manifest order
    failed: set[int] = field(default_factory=set)  # positions of the rows with a problem
    files: int = 0
    read: int = 0  # (file, scene, level) metadata reads, each opening its file
    reused: int = 0  # unchanged files already indexed: not opened
    retries: int = 0
    entries: int = 0

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary (what ``timelapse-pipes index --json`` prints)."""
        return {"index": self.out, "manifest": self.manifest.source, "rows": len(self.manifest),
                "files": self.files, "read": self.read, "reused": self.reused, "retries": self.retries,
                "entries": self.entries, "problems": self.problems}


def build_index(
    manifest: str | Mapping[str, Any],
    *,
    out: str,
    client: Any = None,
    scheduler: str | None = None,
    split: str | None = None,
    columns: ManifestColumns | None = None,
    stop_inclusive: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    reader: str | None = None,
    spatial_dims: int | None = None,
    num_timepoints: int = 1,
    timepoint_sampling: str = "random",
    verify: bool = False,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    files_per_task: int | None = None,
    flush_every: int = 256,
    flush_interval_s: float = 5.0,
    max_retries: int = 3,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Read the metadata of every (file, scene, level) of ``manifest`` on dask into the index ``out``.

    ``out`` is a local file, created or updated: a rerun opens only files missing from it or
    changed since (size + mtime, or ETag). Give every loader ``metadata_cache=out`` (or the URL you
    copy it to): they then open no file to plan or check a row.

    The cluster is ``client`` (a ``distributed.Client``), else the scheduler at ``scheduler``, else a
    ``LocalCluster`` of ``n_workers`` processes (default: one per CPU) with ``threads_per_worker``
    threads (default 4). ``storage_options`` reach the workers, never the index. Rows that do not fit
    their image, and files that do not open or decode, are listed as ``problems`` with
    ``timelapse-pipes inspect``'s messages (checked against ``spatial_dims``, ``num_timepoints`` and
    ``timepoint_sampling`` as ``inspect`` does). ``verify=True`` makes loaders check each file's
    signature once per process instead of trusting the index. Returns :meth:`IndexRun.summary`.
    """
    rows = read_manifest(manifest, split=split, columns=columns, stop_inclusive=stop_inclusive,
                         storage_options=storage_options)
    return run_index(
        rows, out=out, options=inspect_options(spatial_dims, num_timepoints, timepoint_sampling),
        check_spatial_dims=spatial_dims is not None, storage_options=storage_options, reader=reader,
        verify=verify, client=client, scheduler=scheduler, n_workers=n_workers,
        threads_per_worker=threads_per_worker, files_per_task=files_per_task, flush_every=flush_every,
        flush_interval_s=flush_interval_s, max_retries=max_retries, progress=progress,
    ).summary()


def run_index(manifest: Manifest, *, out: str, options: SampleOptions, check_spatial_dims: bool,
              storage_options: Mapping[str, Any] | None = None, reader: str | None = None,
              verify: bool = False, client: Any = None, scheduler: str | None = None,
              n_workers: int | None = None, threads_per_worker: int | None = None,
              files_per_task: int | None = None, flush_every: int = 256, flush_interval_s: float = 5.0,
              max_retries: int = 3, progress: bool | None = None) -> IndexRun:
    """:func:`build_index` on an already read manifest; returns the whole :class:`IndexRun`."""
    out = _local_path(out)
    if flush_every < 1 or flush_interval_s < 0 or max_retries < 0:
        raise ConfigError(f"{flush_every=} must be >= 1, {flush_interval_s=} and {max_retries=} >= 0.")
    previous = read_cache(out, CACHE_VERSION)
    versions = _versions_by_path(previous)
    tasks = _plan(manifest, previous, versions, reader)
    header = {FORMAT_KEY: INDEX_FORMAT, MANIFEST_KEY: manifest.source, SPLIT_KEY: manifest.split,
              READER_KEY: reader, VERIFY_KEY: bool(verify), ROWS_KEY: len(manifest),
              CHECKS_KEY: {"spatial_dims": options.spatial_dims if check_spatial_dims else None,
                           "num_timepoints": options.num_timepoints,
                           "timepoint_sampling": options.timepoint_sampling},
              COMPLETE_KEY: False}
    write_cache(out, CacheContents(previous.entries, dict(header), previous.problems), CACHE_VERSION)
    settings = TaskSettings(reader, options, check_spatial_dims, max_retries)
    with dask_client(client, scheduler, n_workers=n_workers, threads_per_worker=threads_per_worker) as dask:
        results = _run(dask, tasks, settings, storage_options, _ChunkWriter(out, flush_every, flush_interval_s),
                       files_per_task, progress)
    run = _assemble(out, manifest, previous, tasks, results, options, check_spatial_dims, reader)
    entries = _merged(previous, versions, results)
    run.entries = len(entries)
    write_cache(out, CacheContents(entries, {**header, COMPLETE_KEY: True}, run.problems), CACHE_VERSION)
    return run


def _merged(previous: CacheContents, versions: dict[str, dict[str, list[str]]],
            results: list[FileResult]) -> dict[str, dict]:
    """The index's entries after this build: the new ones added, other versions of the files seen dropped."""
    entries = dict(previous.entries)
    for result in results:
        if result.signature is not None:
            for signature, keys in versions.get(result.path, {}).items():
                if signature != result.signature:
                    for key in keys:
                        entries.pop(key, None)
        entries.update(result.entries)
    return entries


def _local_path(out: str) -> str:
    out = str(out)
    if out.startswith("file://"):
        out = out[len("file://"):]
    if is_remote(out):
        raise ConfigError(
            f"out={out!r}: an index is built in a local file (it grows by appended chunks); build it locally, "
            f"then copy it next to the manifest (e.g. `aws s3 cp index.json s3://bucket/manifests/`) and "
            f"pass that URL as metadata_cache."
        )
    return out


def _versions_by_path(contents: CacheContents) -> dict[str, dict[str, list[str]]]:
    """path -> signature -> keys, for every entry the index holds."""
    versions: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for key in contents.entries:
        fields = key_fields(key)
        if fields is not None:
            versions[fields[0]][fields[1]].append(key)
    return versions


def _plan(manifest: Manifest, previous: CacheContents, versions: dict[str, dict[str, list[str]]],
          reader: str | None) -> list[FileTask]:
    """One task per file, with the signatures under which the index already covers all its rows."""
    rows_by_path: dict[str, list] = defaultdict(list)
    for position, row in enumerate(manifest.rows):
        rows_by_path[row.path].append((position, row))
    tasks = []
    for path, rows in rows_by_path.items():
        known = tuple(signature for signature in versions.get(path, {})
                      if all(row_key(row, signature, reader) in previous.entries for _, row in rows))
        tasks.append(FileTask(path, tuple(rows), known))
    return tasks


class _ChunkWriter:
    """Appends new entries to the index every ``every`` entries or ``interval_s`` seconds."""

    def __init__(self, path: str, every: int, interval_s: float) -> None:
        self.path, self.every, self.interval_s = path, every, interval_s
        self.pending: dict[str, dict] = {}
        self.last = time.monotonic()

    def add(self, entries: Mapping[str, dict]) -> None:
        self.pending.update(entries)
        if len(self.pending) >= self.every or time.monotonic() - self.last >= self.interval_s:
            self.flush()

    def flush(self) -> None:
        append_entries(self.path, self.pending)
        self.pending, self.last = {}, time.monotonic()


def _batches(tasks: Sequence[FileTask], files_per_task: int | None, threads: int) -> list[list[FileTask]]:
    size = files_per_task or max(1, min(MAX_FILES_PER_TASK, len(tasks) // max(1, threads * TASKS_PER_THREAD)))
    return [list(tasks[n:n + size]) for n in range(0, len(tasks), size)]


def _run(dask: Any, tasks: list[FileTask], settings: TaskSettings, storage_options: Mapping[str, Any] | None,
         writer: _ChunkWriter, files_per_task: int | None, progress: bool | None) -> list[FileResult]:
    from distributed import as_completed
    from tqdm.auto import tqdm

    if not tasks:
        return []
    threads = sum(dask.nthreads().values()) or 1
    batches = _batches(tasks, files_per_task, threads)
    # Scattered once, under a random key: the options (and their secrets) are not part of any task spec.
    options = dask.scatter([dict(storage_options or {})], broadcast=True, hash=False)[0]
    token = uuid.uuid4().hex[:8]
    futures = {dask.submit(index_files, batch, settings, options, key=f"timelapse-pipes-index-{token}-{n}",
                           pure=False): batch for n, batch in enumerate(batches)}
    results: list[FileResult] = []
    bar = tqdm(total=len(tasks), desc="indexing", unit="file", disable=None if progress is None else not progress)
    try:
        for future in as_completed(list(futures), loop=dask.loop):
            batch = futures[future]
            try:
                done = future.result()
            except ImportError as error:
                raise ConfigError(
                    f"the dask workers cannot import what an index task needs ({error}); install timelapse-pipes "
                    f"and the bioio plugins of your formats in the workers' environment."
                ) from None
            except Exception as error:  # noqa: BLE001 - a lost worker, a cancelled task: data, not a crash
                done = [_failed(task, error, storage_options) for task in batch]
            for result in done:
                writer.add(result.entries)
            results.extend(done)
            bar.update(len(batch))
    finally:
        writer.flush()
        bar.close()
        dask.cancel(list(futures))
    return results


def _failed(task: FileTask, error: BaseException, storage_options: Any) -> FileResult:
    message = RuntimeError(f"the dask task failed: {type(error).__name__}: {redact(str(error), storage_options)}")
    return FileResult(task.path, problems={n: problem(row, message, storage_options) for n, row in task.rows})


def _assemble(out: str, manifest: Manifest, previous: CacheContents, tasks: list[FileTask],
              results: list[FileResult], options: SampleOptions, check_spatial_dims: bool,
              reader: str | None) -> IndexRun:
    """Per-row metadata and problems; rows of unchanged files are checked against stored metadata."""
    run = IndexRun(out, manifest, files=len(tasks))
    by_path = {task.path: task for task in tasks}
    problems: dict[int, dict] = {}
    for result in results:
        run.read += result.opened
        run.reused += result.reused
        run.retries += result.retries
        problems.update(result.problems)
        if result.signature is None:
            continue
        for position, row in by_path[result.path].rows:
            key = row_key(row, result.signature, reader)
            entry = result.entries.get(key) or (previous.entries.get(key) if result.reused else None)
            if entry is None:
                continue
            run.metadata[position] = metadata = ImageMetadata.from_json(entry)
            if result.reused:
                try:
                    check_row_fits(row, metadata, options, check_spatial_dims=check_spatial_dims)
                except TimelapsePipesError as error:
                    problems[position] = problem(row, error)
    run.problems = [problems[position] for position in sorted(problems)]
    run.failed = set(problems)
    return run


def render_summary(summary: Mapping[str, Any]) -> str:
    """What ``timelapse-pipes index`` prints: counts, then every problem with its row."""
    lines = [f"wrote {summary['index']}: {summary['entries']} entries for {summary['files']} file(s) of "
             f"{summary['manifest']} ({summary['read']} read, {summary['reused']} unchanged and not opened"
             f"{', %d retries' % summary['retries'] if summary['retries'] else ''})"]
    return "\n".join(lines + problem_lines(summary["problems"]))
