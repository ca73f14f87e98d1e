"""The baselines, re-implemented from their description (cyto-dl is not imported).

1. :class:`MultiDimImageDataset` (cyto-dl): at init, opens every manifest row with ``BioImage(path)``
   (no ``reader=``, so bioio's plugin discovery) and lists every (scene, T) as a dict;
   ``__getitem__`` opens the image again and reads that T.
2. :func:`bioio_image_loaderd` (cyto-dl ``BioIOImageLoaderd``): per sample a new ``BioImage(path)``,
   the full frame ``get_image_dask_data("CZYX", T=t, C=channels).compute()``, then MONAI
   ``RandSpatialCropd`` when cropping.
3. The raw reader's default read (:func:`open_raw`): the file opened once with its own library
   and read its plain default way (zarr-python's ``array[...]`` for OME-Zarr, tifffile's
   ``TiffFile.asarray(key=pages)`` for OME-TIFF, ``ND2File.read_frame`` for ND2), exactly the
   regions the library reads, with no framework.

The cyto-dl manifest is read with :mod:`csv` rather than pandas (not installed here); parsing a row
costs microseconds against the milliseconds of each ``BioImage`` open.
"""

from __future__ import annotations

import csv
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["MultiDimImageDataset", "timepoint_dicts", "bioio_image_loaderd", "RandomCrop",
           "open_raw", "open_zarrs", "zarrs_installed", "RawReader", "to_batch"]


def timepoint_dicts(row: dict[str, Any], scenes: Sequence[Any], frames: int,
                    spatial_dims: int = 3) -> list[dict[str, Any]]:
    """The per-(scene, T) dicts ``MultiDimImageDataset`` keeps for one manifest row."""
    start = int(row.get("start", 0) or 0)
    stop = int(row.get("stop", -1) or -1)
    timepoints = range(start, stop + 1) if stop > 0 else range(frames)  # cyto-dl: stop inclusive
    order = "CZYX" if spatial_dims == 3 else "CYX"
    return [
        {
            "dimension_order_out": order,
            "C": row["channel"],
            "scene": scene,
            "T": t,
            "original_path": row["path"],
            "resolution": row.get("resolution", 0),
        }
        for scene in scenes
        for t in timepoints
    ]


class MultiDimImageDataset:
    """Baseline 1: one dict per (row, scene, timepoint), built by opening every file at init."""

    def __init__(self, csv_path: str, split: str = "train", spatial_dims: int = 3,
                 max_rows: int | None = None) -> None:
        from bioio import BioImage

        self.spatial_dims = spatial_dims
        self.img_data: list[dict[str, Any]] = []
        with open(csv_path, newline="") as stream:
            for number, row in enumerate(csv.DictReader(stream)):
                if max_rows is not None and number >= max_rows:
                    break
                if row.get("split", split) != split:
                    continue
                img = BioImage(row["path"])  # no reader=: plugin discovery on every row
                scenes = img.scenes
                for scene in scenes:
                    img.set_scene(scene)
                    self.img_data.extend(timepoint_dicts(row, [scene], img.dims.T, spatial_dims))

    def __len__(self) -> int:
        return len(self.img_data)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from bioio import BioImage

        item = dict(self.img_data[index])
        img = BioImage(item["original_path"])
        img.set_scene(item["scene"])
        channels = [int(c) for c in str(item["C"]).split(",")]
        item["raw"] = img.get_image_dask_data(item["dimension_order_out"], T=item["T"], C=channels).compute()
        return item


class RandomCrop:
    """MONAI ``RandSpatialCropd`` on the ``raw`` key, re-seeded per sample like cyto-dl's pipeline."""

    def __init__(self, roi_size: Sequence[int]) -> None:
        from monai.transforms import RandSpatialCropd

        self.transform = RandSpatialCropd(keys=["raw"], roi_size=list(roi_size), random_size=False)

    def __call__(self, data: dict[str, Any], seed: int) -> dict[str, Any]:
        self.transform.set_random_state(seed=seed)
        return self.transform(data)


def bioio_image_loaderd(path: str, t: int, channels: Sequence[int], spatial_dims: int = 3,
                        crop: RandomCrop | None = None, seed: int = 0) -> torch.Tensor:
    """Baseline 2: a new ``BioImage`` per sample, the full frame, then the crop (if any)."""
    from bioio import BioImage
    from monai.data import MetaTensor

    img = BioImage(path)  # automatic reader choice on every sample
    order = "CZYX" if spatial_dims == 3 else "CYX"
    pixels = img.get_image_dask_data(order, T=t, C=list(channels)).compute()
    data = {"raw": MetaTensor(pixels.astype(np.float32), meta={"filename_or_obj": path})}
    if crop is not None:
        data = crop(data, seed)
    return data["raw"]


class RawReader:
    """The native array of one file, opened once; ``read(t, c, region)`` returns ``(C, Z, Y, X)``."""

    def __init__(self, kind: str, handle: Any, close: Any = None) -> None:
        self.kind = kind
        self.handle = handle
        self._close = close

    def read(self, t: int, channels: Sequence[int], region: tuple[slice, slice, slice]) -> np.ndarray:
        z, y, x = region
        if self.kind == "zarr":  # (T, C, Z, Y, X)
            return self.handle[t, _channel_index(channels), z, y, x]
        if self.kind == "tiff":  # the pages of (t, channels, z) through TiffFile.asarray
            return _tiff_pages(self.handle, t, channels, z)[..., y, x]
        if self.kind == "nd2":  # one frame per sequence index: (Y, X) or (C, Y, X)
            frame = self.handle.read_frame(t)
            frame = frame[np.newaxis] if frame.ndim == 2 else frame
            return frame[list(channels)][:, np.newaxis, y, x]
        raise ValueError(self.kind)

    def close(self) -> None:
        if self._close is not None:
            self._close()


def _tiff_pages(tiff: Any, t: int, channels: Sequence[int], z: slice) -> np.ndarray:
    """``(C, Z, Y, X)``: the series' pages of frame ``t`` read by tifffile's default ``asarray``."""
    series = tiff.series[0]
    sizes = dict(zip(series.axes, series.shape))
    depths = range(sizes.get("Z", 1))[z]
    grid = tuple(series.shape[:-2])
    keys = [int(np.ravel_multi_index([{"T": t, "C": c, "Z": d}[a] for a in series.axes[:-2]], grid))
            if grid else 0 for c in channels for d in depths]
    data = tiff.asarray(key=keys, series=0)
    return data.reshape((len(channels), len(depths)) + tuple(series.shape[-2:]))


def _channel_index(channels: Sequence[int]) -> Any:
    channels = list(channels)
    if channels == list(range(channels[0], channels[-1] + 1)):
        return slice(channels[0], channels[-1] + 1)
    return channels


def open_raw(path: str) -> RawReader:
    """Open the native array once: zarr level 0, tifffile's zarr store, or an ``ND2File``."""
    lowered = path.lower().rstrip("/")
    if lowered.endswith(".zarr"):
        import zarr

        return RawReader("zarr", zarr.open_array(f"{path}/0", mode="r"))
    if lowered.endswith((".tif", ".tiff")):
        import tifffile

        tiff = tifffile.TiffFile(path)
        if set(tiff.series[0].axes[:-2]) - set("TCZ") or not tiff.series[0].axes.endswith("YX"):
            tiff.close()
            raise ValueError(f"{path}: the raw TIFF path here handles T, C, Z, Y, X series only")
        return RawReader("tiff", tiff, tiff.close)
    if lowered.endswith(".nd2"):
        import nd2

        handle = nd2.ND2File(path)
        if set(handle.sizes) - set("TCYX"):
            raise ValueError(f"{path}: the raw ND2 path here handles T, C, Y, X files only")
        return RawReader("nd2", handle, handle.close)
    raise ValueError(f"no raw reader for {path}")


def zarrs_installed() -> bool:
    """Whether the ``zarrs`` codec pipeline (zarr-python's Rust pipeline) can be imported."""
    try:
        import zarrs  # noqa: F401
    except ImportError:
        return False
    return True


def open_zarrs(path: str, threads: int) -> Any:
    """The zarr array at ``path`` opened with the ``zarrs`` codec pipeline on ``threads`` threads
    (zarr's config, read when the array is opened: the way zarrs documents)."""
    import zarr

    with zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline", "threading.max_workers": threads}):
        return zarr.open_array(path, mode="r")


def to_batch(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    """What a training step receives: a float32 ``[B, ...]`` tensor (same as the library's output)."""
    return torch.from_numpy(np.stack([a.astype(np.float32, copy=False) for a in arrays]))
