"""Local ND2 files read frame by frame from a kept-open ``nd2.ND2File``."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...records import AXES
from .base import from_local_file
from .chunked import check_out

__all__ = ["ND2Frames", "nd2_native"]


class ND2Frames:
    """Reads (T, C, Z, Y, X) regions frame by frame from a kept-open ``nd2.ND2File``."""

    def __init__(self, handle: Any, frames: dict[tuple[int, int], int], channels: int) -> None:
        self.handle = handle
        self.frames = frames  # (t, z) -> frame index, for this scene (position)
        self.channels = channels
        self.all_channels = list(range(channels))
        self.depth = max(z for _, z in frames) + 1
        self.yx = (int(handle.sizes["Y"]), int(handle.sizes["X"]))
        self.dims = AXES

    def close(self) -> None:
        """Close the kept-open ``ND2File``."""
        self.handle.close()

    def __del__(self) -> None:
        # nd2 warns when an ND2File is garbage collected open; an evicted reader closes its file.
        try:
            self.handle.close()
        except Exception:
            pass

    def read(self, timepoints: Sequence[int], channels: Sequence[int] | None,
             region: tuple[slice, ...], out: np.ndarray | None = None) -> np.ndarray:
        """``(len(timepoints), C, Z, Y, X)`` pixels; into ``out`` (cast on write) when given."""
        z_indices = range(self.depth)[region[0]]
        picked = self.all_channels if channels is None else list(channels)
        if out is not None and len(timepoints) == 1 and len(z_indices) == 1:  # the small-frame hot path
            plane = self._plane(timepoints[0], z_indices[0], picked, region)
            check_out(out, (1, plane.shape[0], 1) + plane.shape[1:])
            np.copyto(out[0, :, 0], plane, casting="unsafe")
            return out
        if out is None:
            cache: dict[int, np.ndarray] = {}
            planes = []
            for t in timepoints:
                if t not in cache:
                    cache[t] = np.stack([self._plane(t, z, picked, region) for z in z_indices], axis=1)
                planes.append(cache[t])  # C, Z, Y, X
            return np.stack(planes)
        check_out(out, (len(timepoints), len(picked), len(z_indices)) + tuple(
            len(range(size)[cut]) for size, cut in zip(self.yx, region[1:])))
        first: dict[int, int] = {}
        for k, t in enumerate(timepoints):
            if t in first:  # a repeated frame: copy what was read
                out[k] = out[first[t]]
                continue
            first[t] = k
            for n, z in enumerate(z_indices):
                np.copyto(out[k, :, n], self._plane(t, z, picked, region), casting="unsafe")
        return out

    def _plane(self, t: int, z: int, picked: list[int], region: tuple[slice, ...]) -> np.ndarray:
        """The ``(C, Y, X)`` region of frame (t, z), channels ``picked`` (a view where it can be:
        small frames are read tens of thousands of times a second, so no copy is wasted)."""
        frame = np.asarray(self.handle.read_frame(self.frames[(t, z)]))
        if frame.ndim == 2:
            frame = frame[None]  # C, Y, X
        if picked is not self.all_channels and picked != self.all_channels:
            frame = frame[picked]
        return frame[:, region[1], region[2]]


def nd2_native(image: Any, path: str) -> ND2Frames | None:
    """Frames of the image's current scene from a kept-open ``ND2File``; None for remote files or unusual axes."""
    return from_local_file(path, _open_nd2_file, lambda handle: _frames(image, handle))


def _frames(image: Any, handle: Any) -> ND2Frames:
    """The image's current scene in an open ``ND2File``; raises where its axes disagree with bioio's."""
    sizes = dict(handle.sizes)
    if handle.is_rgb or not set(sizes) <= {"P", "T", "Z", "C", "Y", "X"}:
        raise ValueError("unsupported axes")
    scene = list(image.scenes).index(image.current_scene)
    frames = {}
    for index, coords in enumerate(handle.loop_indices):
        if coords.get("P", 0) == scene:
            frames[(coords.get("T", 0), coords.get("Z", 0))] = index
    reported = dict(zip(image.dims.order, image.dims.shape))
    expected = {"T": sizes.get("T", 1), "C": sizes.get("C", 1), "Z": sizes.get("Z", 1),
                "Y": sizes["Y"], "X": sizes["X"]}
    if any(reported.get(axis, 1) != size for axis, size in expected.items()) or \
            len(frames) != expected["T"] * expected["Z"]:
        raise ValueError("dims disagree with bioio")
    return ND2Frames(handle, frames, expected["C"])


def _open_nd2_file(path: str) -> Any:
    import nd2

    return nd2.ND2File(path)
