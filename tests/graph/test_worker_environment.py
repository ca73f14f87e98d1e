"""Process workers see the loader process's environment as of each iteration, not the forkserver's."""

from __future__ import annotations

import os
import uuid

import pytest

import timelapse_pipes as tp

pytestmark = pytest.mark.timeout(300)
NAME = "TIMELAPSE_PIPES_TEST_WORKER_MARK"


class EnvironmentMark:
    """A transform: each sample records this process's value of ``NAME`` ('' when unset)."""

    def __call__(self, sample: dict) -> dict:
        sample["mark"] = os.environ.get(NAME, "")
        return sample


def _marks(rows: dict) -> list[str]:
    with tp.build_loader(rows, split=None, num_workers=2, worker_method="process", samples_per_epoch=4,
                         batch_size=2, transforms=EnvironmentMark()) as loader:
        return [mark for batch in loader for mark in batch["mark"]]


def test_a_variable_set_after_the_forkserver_started_reaches_the_workers(synthetic, monkeypatch):
    rows = {"dict_meta": {"path": [str(synthetic["zarr_v3"])]}}
    monkeypatch.delenv(NAME, raising=False)
    assert _marks(rows) == [""] * 4  # the forkserver runs now, started without the variable
    value = uuid.uuid4().hex
    monkeypatch.setenv(NAME, value)  # as a user sets AWS_* credentials after a first loader
    assert _marks(rows) == [value] * 4
    monkeypatch.delenv(NAME)
    assert _marks(rows) == [""] * 4  # and one removed is gone there too
