"""Shared fixtures: synthetic timelapses written with real writers, and the real sample files (tests/real_data.py)."""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

# gcsfs makes a gRPC call per bucket that fails against the GCS emulator and retries for 60 s;
# this must be set before gcsfs is first imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

from tests import real_data  # noqa: E402
from tests.helpers import write_synthetic_set  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    # The CZI / OME readers warn about optional metadata; not our code's warnings.
    warnings.filterwarnings("ignore", module="bioio.*")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The verified real sample files: a mirror or the download cache; skips without them (fails under CI=true)."""
    return real_data.require(real_data.session_root(), os.environ)


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small file per writable format, each T>1 (see tests/helpers.py)."""
    return write_synthetic_set(tmp_path_factory.mktemp("synthetic"))


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


@pytest.fixture
def csv_writer(tmp_path: Path):
    counter = iter(range(10_000))

    def _write(rows: list[dict], columns: list[str] | None = None) -> Path:
        return write_csv(tmp_path / f"manifest{next(counter)}.csv", rows, columns)

    return _write


@pytest.fixture(autouse=True)
def _quiet_numpy() -> None:
    np.seterr(all="ignore")
    os.environ.setdefault("TQDM_DISABLE", "1")
