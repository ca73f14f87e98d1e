"""Microsoft's Azurite emulator from npm, at one pinned version, installed once outside the repository.

Used by tests/cloud/test_cloud_gcs_azure.py and by `.ci/run` (``python3 tests/helpers/azurite.py``) before the
tests; standard library only. ``$TIMELAPSE_PIPES_AZURITE_HOME`` overrides the install folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

VERSION = "3.37.0"  # `npm view azurite version`, November 2026
HOME = Path(os.environ.get("TIMELAPSE_PIPES_AZURITE_HOME", Path.home() / ".cache" / "timelapse-pipes-azurite"))
RETRY_DELAYS_S = (5, 15)  # 3 tries in all


class AzuriteInstallError(RuntimeError):
    """npm is missing, or `npm install azurite@VERSION` failed on every try."""


def installed_version(home: Path = HOME) -> str | None:
    package = home / "node_modules" / "azurite" / "package.json"
    try:
        return json.loads(package.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def binary(home: Path = HOME) -> Path:
    return home / "node_modules" / ".bin" / "azurite-blob"


def install(home: Path = HOME, version: str = VERSION, delays: tuple[float, ...] = RETRY_DELAYS_S) -> Path:
    """The azurite-blob binary of ``version`` under ``home``, installing it with npm (retried) if needed."""
    if installed_version(home) == version and binary(home).exists():
        return binary(home)
    npm = shutil.which("npm")
    if npm is None:
        raise AzuriteInstallError(f"npm not found on PATH: the Azure tests need Azurite {version} from npm. "
                                  f"Install Node.js 18+ (it ships npm), or run `npm install --prefix {home} "
                                  f"azurite@{version}` where npm exists and set TIMELAPSE_PIPES_AZURITE_HOME")
    home.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(home), f"azurite@{version}"]
    failures = []
    for attempt, delay in enumerate((*delays, None), 1):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
            detail = f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[-800:]}"
        except subprocess.TimeoutExpired:
            detail = "timed out after 300 s"
        if installed_version(home) == version and binary(home).exists():
            return binary(home)
        failures.append(f"try {attempt}: {detail}")
        if delay is not None:
            print(f"npm install azurite@{version} failed ({detail.splitlines()[0]}); retrying in {delay} s",
                  file=sys.stderr)
            time.sleep(delay)
    raise AzuriteInstallError(f"`{' '.join(command)}` failed {len(failures)} times; the Azure tests cannot run. "
                              f"Check npm's registry access (npm config get registry) and retry:\n  "
                              + "\n  ".join(failures))


if __name__ == "__main__":
    try:
        print(f"Azurite {VERSION}: {install()}")
    except AzuriteInstallError as error:
        sys.exit(f"error: {error}")
