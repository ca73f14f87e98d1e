"""When each frame was acquired: per-frame times and the nominal interval, read with the metadata.

Read once per (file, scene) when its metadata is read, and stored in the metadata cache, so they
cost nothing per sample. Sources, best first:

* per-plane timestamps where the reader exposes them: ND2 frame times (``nd2`` frame metadata,
  ``relativeTimeMs`` of the first channel at Z=0) and OME ``Plane DeltaT`` (OME-TIFF);
* otherwise T x the file's interval.

The nominal interval is the file's declared period (OME ``Pixels TimeIncrement``, an ND2 time
loop's ``periodMs``), else the mean spacing of the per-frame times, else bioio's
``standard_metadata.timelapse_interval``. Times are seconds from the scene's first frame.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any, Iterator

from .._compat import open_nd2
from ..records import FrameTimes

__all__ = ["read_frame_times"]

_SECONDS_PER_UNIT = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}


def read_frame_times(image: Any, scene_index: int, size_t: int) -> FrameTimes:
    """The frame times of the image's current scene; never raises (missing timing is None)."""
    plugin = type(getattr(image, "reader", None)).__module__.split(".")[0]
    times: tuple[float, ...] | None = None
    declared: float | None = None
    with _quiet(plugin):
        try:
            if plugin == "bioio_nd2":
                times, declared = _nd2_times(image.reader, scene_index, size_t)
            elif plugin == "bioio_ome_tiff":
                times, declared = _ome_times(image.ome_metadata, scene_index, size_t)
        except Exception:  # readers raise anything on odd metadata: timing is optional
            times, declared = None, None
        interval = declared
        if interval is None and times is not None and size_t > 1:
            interval = (times[-1] - times[0]) / (size_t - 1)
        if interval is None and size_t > 1:
            interval = _bioio_interval(image)
    if times is None and interval is not None:
        times = tuple(t * interval for t in range(size_t))
    elif times is not None:
        times = tuple(t - times[0] for t in times)
    return FrameTimes(times, interval)


def _nd2_times(reader: Any, scene_index: int, size_t: int) -> tuple[tuple[float, ...] | None, float | None]:
    with open_nd2(reader) as handle:
        first_of_t: dict[int, int] = {}
        for index, coords in enumerate(handle.loop_indices):
            if coords.get("P", 0) == scene_index and coords.get("Z", 0) == 0:
                first_of_t.setdefault(coords.get("T", 0), index)
        times = None
        if sorted(first_of_t) == list(range(size_t)):
            times = tuple(handle.frame_metadata(first_of_t[t]).channels[0].time.relativeTimeMs / 1000.0
                          for t in range(size_t))
        period = None
        for loop in handle.experiment or ():
            if type(loop).__name__ in ("TimeLoop", "NETimeLoop") and loop.parameters.periodMs > 0:
                period = loop.parameters.periodMs / 1000.0
                break
    return times, period


def _ome_times(ome: Any, scene_index: int, size_t: int) -> tuple[tuple[float, ...] | None, float | None]:
    pixels = ome.images[scene_index].pixels
    declared = _seconds(pixels.time_increment, pixels.time_increment_unit)
    first_plane: dict[int, Any] = {}
    for plane in sorted(pixels.planes, key=lambda p: (p.the_t, p.the_z, p.the_c)):
        if plane.delta_t is not None:
            first_plane.setdefault(plane.the_t, plane)
    times = None
    if sorted(first_plane) == list(range(size_t)):
        times = tuple(_seconds(first_plane[t].delta_t, first_plane[t].delta_t_unit) for t in range(size_t))
    return times, declared  # type: ignore[return-value]


def _seconds(value: Any, unit: Any) -> float | None:
    if value is None:
        return None
    symbol = getattr(unit, "value", unit) or "s"
    if symbol not in _SECONDS_PER_UNIT:
        raise ValueError(f"unknown time unit {symbol!r}")
    return float(value) * _SECONDS_PER_UNIT[symbol]


@contextlib.contextmanager
def _quiet(plugin: str) -> Iterator[None]:
    """Silence the plugins' logged tracebacks about optional metadata they cannot find."""
    loggers = [logging.getLogger(name) for name in ("bioio", "bioio_base", plugin)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _bioio_interval(image: Any) -> float | None:
    try:
        interval = image.standard_metadata.timelapse_interval
    except Exception:
        return None
    if isinstance(interval, timedelta) and interval.total_seconds() > 0:
        return interval.total_seconds()
    return None
