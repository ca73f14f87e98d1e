"""Test-only support: the synthetic set the fixtures write, bioio reference reads, an open-file recorder
and a counter of reader opens.

The writers, ``collect``, ``assert_batches_equal`` and the state round trips are public, in
:mod:`timelapse_pipes.testing`. The scripts beside this module are the suite's own tools:
``real_data`` (where the real sample files come from) and ``make_real_data_registry``,
``azurite`` (the Azure emulator), and the programs tests run in subprocesses (``close_probe``,
``dist_worker``, ``soak_trainer``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from timelapse_pipes.testing import (
    noise_movie,
    write_czi,
    write_imagej_tiff,
    write_ome_tiff,
    write_ome_zarr,
)

SYNTHETIC_SHAPE = (12, 2, 3, 64, 64)  # T, C, Z, Y, X


def write_synthetic_set(folder: Path) -> dict[str, Path]:
    """3-D: OME-Zarr v2 and v3 (2 levels), a 2-scene OME-TIFF. 2-D: an ImageJ TIFF, a CZI, an OME-Zarr."""
    return {
        "zarr_v3": write_ome_zarr(folder / "movie_v3.ome.zarr", noise_movie(SYNTHETIC_SHAPE, 1), 3),
        "zarr_v2": write_ome_zarr(folder / "movie_v2.ome.zarr", noise_movie(SYNTHETIC_SHAPE, 2), 2),
        "ome_tiff": write_ome_tiff(folder / "two_scenes.ome.tiff",
                                   [noise_movie((6, 2, 3, 48, 40), 3), noise_movie((6, 2, 3, 48, 40), 4)]),
        "tiff": write_imagej_tiff(folder / "movie.tif", noise_movie((5, 1, 1, 40, 48), 5)),
        "czi": write_czi(folder / "movie.czi", noise_movie((4, 2, 1, 40, 40), 6)),
        "zarr_2d": write_ome_zarr(folder / "movie_2d.ome.zarr", noise_movie((8, 2, 1, 64, 64), 7), 3),
    }


def bioio_reference(path: str, timepoints: Iterable[int], channels: Iterable[int] | None,
                    scene: int | str = 0, level: int = 0, order: str = "TCZYX", reader: Any = None,
                    **reader_kwargs: Any) -> np.ndarray:
    """bioio's own in-memory read of the same (scene, level, T, C), then indexed.

    An ``S`` (RGB samples) axis is folded into C as c0s0, c0s1, c0s2, c1s0, ...
    """
    from bioio import BioImage

    image = BioImage(path, reader=reader, **reader_kwargs) if reader else BioImage(path, **reader_kwargs)
    image.set_scene(scene)
    if level:
        image.set_resolution_level(level)
    samples = "S" in image.dims.order
    data = image.get_image_data(order + ("S" if samples else ""))
    if samples:
        data = np.moveaxis(data, -1, 2)
    data = data[list(timepoints)]
    if channels is not None:
        data = data[:, list(channels)]
    if samples:
        data = data.reshape((data.shape[0], -1) + data.shape[3:])
    return data


class OpenRecorder:
    """Records files opened (Python's "open" audit event) whose path contains ``marker`` while active.

    Audit hooks cannot be removed, so one hook per recorder stays installed but idle when inactive.
    """

    def __init__(self, marker: str) -> None:
        import sys
        import threading

        self.marker = marker
        self.opened: list[str] = []
        self._active = threading.Event()
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        if self._active.is_set() and event == "open" and isinstance(args[0], str) and self.marker in args[0]:
            self.opened.append(args[0])

    def __enter__(self) -> "OpenRecorder":
        self.opened.clear()
        self._active.set()
        return self

    def __exit__(self, *exc: object) -> None:
        self._active.clear()


def count_reader_opens(monkeypatch: Any, reader_class: type) -> list[str]:
    """The paths of every real open of ``reader_class`` (its constructor, by any thread) from now on."""
    opened: list[str] = []
    real_init = reader_class.__init__

    def init(self: Any, image: Any, *args: Any, **kwargs: Any) -> None:
        opened.append(str(image))
        real_init(self, image, *args, **kwargs)

    monkeypatch.setattr(reader_class, "__init__", init)
    return opened
