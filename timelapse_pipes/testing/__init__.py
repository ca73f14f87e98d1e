"""Reusable test support, public so that users' own tests and the benchmarks can use it.

* :mod:`.writers`: synthetic timelapses written with the real writers (OME-Zarr, OME-TIFF, ImageJ
  TIFF, CZI) and manifest CSVs;
* :mod:`.sources`: a synthetic sample stage and source node that need no file at all;
* :mod:`.round_trip`: the state round trips: :func:`run_test_save_load_state` for one
  ``BaseNode`` (as torchdata tests its own nodes) and :func:`run_state_round_trip` for a loader.
"""

from .round_trip import (
    assert_batches_equal,
    collect,
    run_state_round_trip,
    run_test_save_load_state,
)
from .sources import SyntheticSample, synthetic_source
from .writers import (
    noise_movie,
    write_czi,
    write_demo_data,
    write_imagej_tiff,
    write_manifest,
    write_ome_tiff,
    write_ome_zarr,
    write_ome_zarr_frames,
)

__all__ = [
    "SyntheticSample",
    "assert_batches_equal",
    "collect",
    "noise_movie",
    "run_state_round_trip",
    "run_test_save_load_state",
    "synthetic_source",
    "write_czi",
    "write_demo_data",
    "write_imagej_tiff",
    "write_manifest",
    "write_ome_tiff",
    "write_ome_zarr",
    "write_ome_zarr_frames",
]
