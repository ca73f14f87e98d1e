"""Shared fixtures: synthetic timelapses written with real writers, the real sample files
(tests/helpers/real_data.py), and the ``real_data`` marker on every test that reads them."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

# gcsfs makes a gRPC call per bucket that fails against the GCS emulator and retries for 60 s;
# this must be set before gcsfs is first imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

from tests.helpers import real_data, write_synthetic_set  # noqa: E402
from timelapse_pipes.testing import write_manifest  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    # The CZI / OME readers warn about optional metadata; not our code's warnings.
    warnings.filterwarnings("ignore", module="bioio.*")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``real_data`` every test that needs the real sample files, through any fixture chain."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_data)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The verified real sample files: a mirror or the download cache; skips without them (fails under CI=true)."""
    return real_data.require(real_data.session_root(), os.environ)


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small file per writable format, each T>1 (see tests/helpers/__init__.py)."""
    return write_synthetic_set(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture
def csv_writer(tmp_path: Path):
    """Write manifest CSVs (``timelapse_pipes.testing.write_manifest``) to fresh files under ``tmp_path``."""
    counter = iter(range(10_000))

    def _write(rows: list[dict], columns: list[str] | None = None) -> Path:
        return write_manifest(tmp_path / f"manifest{next(counter)}.csv", rows, columns)

    return _write


@pytest.fixture(autouse=True)
def _quiet_numpy() -> None:
    np.seterr(all="ignore")
    os.environ.setdefault("TQDM_DISABLE", "1")
