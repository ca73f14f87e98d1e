"""Thread workers of a new epoch reuse the images the last epoch opened: no file is opened again.

Each epoch's worker threads are new; the cache once kept one image per thread, so each new thread
opened every file again. Now the opens over several epochs never exceed one per file per worker.
"""

from __future__ import annotations

import pytest

import timelapse_pipes as tp
from tests.helpers import count_reader_opens
from timelapse_pipes.reading.readers import load_reader_class
from timelapse_pipes.testing import assert_batches_equal, collect

pytestmark = pytest.mark.timeout(300)
EPOCHS = 3


def opens_per_epoch(loader: tp.TimelapseLoader, opened: list[str]) -> tuple[list[int], list[list]]:
    """Real opens made during each of ``EPOCHS`` epochs, and each epoch's batches."""
    counts, epochs = [], []
    for _ in range(EPOCHS):
        before = len(opened)
        epochs.append(collect(loader))
        counts.append(len(opened) - before)
    return counts, epochs


@pytest.mark.parametrize("num_workers", [2, 4])
def test_thread_workers_open_each_file_in_the_first_epoch_only(synthetic, monkeypatch, num_workers):
    rows = {"dict_meta": {"path": [str(synthetic["zarr_v3"]), str(synthetic["zarr_v2"])]}}
    options = dict(split=None, num_timepoints=2, samples_per_epoch=16, batch_size=2, crop={"roi_size": [2, 24, 24]})
    with tp.build_loader(rows, **options) as reference:
        expected = [collect(reference) for _ in range(EPOCHS)]
    opened = count_reader_opens(monkeypatch, load_reader_class("ome-zarr"))
    with tp.build_loader(rows, num_workers=num_workers, **options) as loader:
        counts, epochs = opens_per_epoch(loader, opened)
        # at most one image per file per thread reading it at once, whatever the epochs: no reopen
        assert counts[0] >= 2 and sum(counts) <= 2 * num_workers, counts
        for got, want in zip(epochs, expected):
            assert_batches_equal(got, want)
    assert len(loader.prepared.readers) == 0  # close() closed every open image
