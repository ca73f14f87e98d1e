"""What one dask task does: check a batch of files, each opened at most once.

A task gets :class:`FileTask` s and returns :class:`FileResult` s; both are small and picklable.
For each file it first takes the signature (``size|mtime`` or ``size|ETag``): when the index
already holds every (scene, level) the file's rows need under that signature, the file is not
opened. Otherwise its rows go through ``inspect``'s checks (:mod:`timelapse_pipes.inspect`), so
problems carry ``inspect``'s messages. Transient storage errors are retried with backoff; nothing
is raised to dask (whose logs would print the task's arguments): every failure is returned as data,
with the storage options' secrets redacted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar

from ..config.checks import check_metadata, check_row, problem
from ..config.options import SampleOptions
from ..errors import SampleError
from ..reading.cache.file_format import cache_key
from ..reading.cache.metadata_cache import MetadataCache
from ..reading.metadata import file_signature
from ..reading.readers import ReaderCache
from ..reading.retry import retry_transient
from ..records import ManifestRow

__all__ = ["TaskSettings", "FileTask", "FileResult", "index_files", "index_file", "row_key"]

T = TypeVar("T")


@dataclass(frozen=True)
class TaskSettings:
    """How every file is checked (the same for all tasks of one build)."""

    reader: str | None
    options: SampleOptions
    check_spatial_dims: bool
    max_retries: int = 3
    retry_backoff_s: float = 0.2


@dataclass(frozen=True)
class FileTask:
    """One file and its manifest rows (with their positions in the manifest)."""

    path: str
    rows: tuple[tuple[int, ManifestRow], ...]
    known_signatures: tuple[str, ...] = ()  # signatures under which the index has every entry these rows need


@dataclass
class FileResult:
    """What a task learned about one file."""

    path: str
    signature: str | None = None
    reused: bool = False  # unchanged and fully indexed: not opened
    entries: dict[str, dict] = field(default_factory=dict)  # new cache entries, by key
    problems: dict[int, dict] = field(default_factory=dict)  # manifest position -> inspect's problem
    opened: int = 0  # metadata reads (file opens) this task made
    retries: int = 0


def row_key(row: ManifestRow, signature: str, reader: str | None) -> str:
    """The cache key of a row's (file version, scene, level, reader), as loaders look it up."""
    return cache_key(row.path, signature, row.scene, row.resolution, row.reader or reader)


def index_files(tasks: list[FileTask], settings: TaskSettings,
                storage_options: Mapping[str, Any] | None) -> list[FileResult]:
    """The dask task: :func:`index_file` for each file, in order."""
    return [index_file(task, settings, storage_options) for task in tasks]


def index_file(task: FileTask, settings: TaskSettings, storage_options: Mapping[str, Any] | None) -> FileResult:
    """Signature, then (unless unchanged) metadata, fit checks and one decoded pixel per row."""
    result = FileResult(task.path)
    try:
        result.signature = _retrying(lambda: file_signature(task.path, storage_options), settings, result)
    except Exception as error:  # noqa: BLE001 - every failure becomes data
        result.problems = {n: problem(row, error, storage_options) for n, row in task.rows}
        return result
    if result.signature in task.known_signatures:
        result.reused = True
        return result
    cache, readers = MetadataCache(None, settings.reader, storage_options), ReaderCache()
    read: dict[str, Any] = {}
    unreadable: set[str] = set()
    try:
        for position, row in task.rows:
            key = row_key(row, result.signature, settings.reader)
            try:
                metadata = _retrying(lambda: check_metadata(row, cache, readers), settings, result)
                read[key] = metadata
                _retrying(lambda: check_row(row, metadata, readers, settings.options, storage_options,
                                            check_spatial_dims=settings.check_spatial_dims), settings, result)
            except Exception as error:  # noqa: BLE001
                result.problems[position] = problem(row, error, storage_options)
                if not isinstance(error, SampleError):
                    unreadable.add(key)  # pixels that do not decode: no entry, so a rerun tries again
    finally:
        result.opened = cache.files_opened
        readers.close()
    result.entries = {key: metadata.to_json() for key, metadata in read.items() if key not in unreadable}
    return result


def _retrying(call: Callable[[], T], settings: TaskSettings, result: FileResult) -> T:
    def count() -> None:
        result.retries += 1

    return retry_transient(call, max_retries=settings.max_retries, backoff_s=settings.retry_backoff_s,
                           on_retry=count)
