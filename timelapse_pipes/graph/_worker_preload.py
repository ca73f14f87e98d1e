"""Imported once by the forkserver so forked process workers start with bioio and its plugins loaded."""

from __future__ import annotations

import importlib

for _name in ("dask.array", "bioio", "bioio_ome_zarr", "bioio_ome_tiff", "bioio_tifffile", "bioio_nd2",
              "bioio_czi", "bioio_lif", "monai.transforms"):
    try:
        importlib.import_module(_name)
    except Exception:  # an optional plugin that is not installed
        pass
