"""Test helpers: synthetic data writers, bioio reference reads and the state round-trip check."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

SYNTHETIC_SHAPE = (12, 2, 3, 64, 64)  # T, C, Z, Y, X


def _pixels(shape: tuple[int, ...], seed: int, dtype: str = "uint16") -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4000, size=shape).astype(dtype)


def write_ome_zarr(path: Path, data: np.ndarray, zarr_format: int = 3, levels: int = 2,
                   chunk: tuple[int, ...] = (1, 1, 1, 32, 32)) -> Path:
    from bioio_ome_zarr.writers import OMEZarrWriter

    t, c, z, y, x = data.shape
    shapes = [(t, c, z, y // 2**k, x // 2**k) for k in range(levels)]
    writer = OMEZarrWriter(str(path), level_shapes=shapes, dtype=data.dtype, chunk_shape=chunk,
                           zarr_format=zarr_format, axes_names=["t", "c", "z", "y", "x"],
                           physical_pixel_size=[1.0, 1.0, 2.0, 0.5, 0.5])
    writer.write_full_volume(data)
    return path


def write_ome_tiff(path: Path, scenes: list[np.ndarray]) -> Path:
    from bioio_ome_tiff.writers import OmeTiffWriter

    OmeTiffWriter.save(scenes, str(path), dim_order="TCZYX",
                       image_name=[f"pos{i}" for i in range(len(scenes))])
    return path


def write_imagej_tiff(path: Path, data: np.ndarray) -> Path:
    import tifffile

    tifffile.imwrite(str(path), data.transpose(0, 2, 1, 3, 4), imagej=True, metadata={"axes": "TZCYX"})
    return path


def write_czi(path: Path, data: np.ndarray) -> Path:
    from pylibCZIrw import czi as pyczi

    if path.exists():
        path.unlink()
    with pyczi.create_czi(str(path), exist_ok=True) as writer:
        for t in range(data.shape[0]):
            for c in range(data.shape[1]):
                for z in range(data.shape[2]):
                    writer.write(data[t, c, z][..., np.newaxis], plane={"T": t, "C": c, "Z": z})
    return path


def write_synthetic_set(folder: Path) -> dict[str, Path]:
    """3-D: OME-Zarr v2 and v3 (2 levels), a 2-scene OME-TIFF. 2-D: an ImageJ TIFF, a CZI, an OME-Zarr."""
    base = _pixels(SYNTHETIC_SHAPE, 1)
    return {
        "zarr_v3": write_ome_zarr(folder / "movie_v3.ome.zarr", base, 3),
        "zarr_v2": write_ome_zarr(folder / "movie_v2.ome.zarr", _pixels(SYNTHETIC_SHAPE, 2), 2),
        "ome_tiff": write_ome_tiff(folder / "two_scenes.ome.tiff",
                                   [_pixels((6, 2, 3, 48, 40), 3), _pixels((6, 2, 3, 48, 40), 4)]),
        "tiff": write_imagej_tiff(folder / "movie.tif", _pixels((5, 1, 1, 40, 48), 5)),
        "czi": write_czi(folder / "movie.czi", _pixels((4, 2, 1, 40, 40), 6)),
        "zarr_2d": write_ome_zarr(folder / "movie_2d.ome.zarr", _pixels((8, 2, 1, 64, 64), 7), 3),
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


def collect(loader: Iterable[Any], limit: int | None = None) -> list[Any]:
    out = []
    for n, batch in enumerate(loader):
        if limit is not None and n >= limit:
            break
        out.append(batch)
    return out


def assert_batches_equal(left: list[dict], right: list[dict]) -> None:
    """Bit-identical tensors and identical metadata, batch by batch."""
    assert len(left) == len(right), f"{len(left)} batches vs {len(right)}"
    for n, (a, b) in enumerate(zip(left, right)):
        assert a.keys() == b.keys(), f"batch {n}: keys differ"
        for key in a:
            if isinstance(a[key], torch.Tensor):
                assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, f"batch {n} {key}"
                assert torch.equal(a[key], b[key]), f"batch {n}: {key} differs"
            else:
                assert a[key] == b[key], f"batch {n}: {key} differs"


def run_state_round_trip(make_loader: Callable[[], Any], midpoints: Iterable[int], epochs: int = 2) -> None:
    """torchdata-style round trip: for each midpoint k, the state after k batches resumed in a fresh
    loader yields exactly what the uninterrupted run yields from k on, into the next epoch."""
    reference_loader = make_loader()
    reference = [collect(reference_loader) for _ in range(epochs)]
    flat = [batch for epoch in reference for batch in epoch]
    per_epoch = len(reference[0])
    for k in midpoints:
        loader = make_loader()
        seen = 0
        state = loader.state_dict() if k == 0 else None
        for _ in range(epochs if k else 0):
            for batch in loader:
                seen += 1
                if seen == k:
                    state = loader.state_dict()
                    break
            if state is not None:
                break
        assert state is not None, f"midpoint {k} is beyond {epochs} epochs"
        import json

        state = json.loads(json.dumps(state))  # the state must survive JSON
        resumed = make_loader()
        resumed.load_state_dict(state)
        rest = collect(resumed)
        epoch_of_k, offset = divmod(k, per_epoch)
        if k == 0:  # a state taken before the first batch resumes at the first batch
            expected = reference[0]
        elif offset == 0:  # resumed at an epoch boundary: the next iteration is the next epoch
            expected = reference[epoch_of_k] if epoch_of_k < epochs else []
        else:
            expected = flat[k: (epoch_of_k + 1) * per_epoch]
        assert_batches_equal(rest, expected)
        if epoch_of_k + 1 < epochs:
            assert_batches_equal(collect(resumed), reference[epoch_of_k + 1])
