"""Where the real microscopy sample files come from: a local mirror, else a verified download.

Order: the folder in ``$TIMELAPSE_PIPES_TEST_DATA``; else ``../shared/data`` beside the repository;
else every file of ``real_data_registry.txt`` fetched with pooch into a user cache
(``$TIMELAPSE_PIPES_CACHE``, default ``pooch.os_cache("timelapse-pipes")/test-data``), keeping the
same relative layout so zarr stores are folders. Every file is checked against its sha256.

Resolution runs once per session (:func:`session_root`). With no mirror and no network the real-file
tests skip with one reason naming ``$TIMELAPSE_PIPES_TEST_DATA``; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

ENV_MIRROR = "TIMELAPSE_PIPES_TEST_DATA"
ENV_CACHE = "TIMELAPSE_PIPES_CACHE"
REPO_ROOT = Path(__file__).resolve().parents[2]
REGISTRY_PATH = Path(__file__).with_name("real_data_registry.txt")
SIBLING_MIRROR = REPO_ROOT.parent / "shared" / "data"
PROBE_URL = "https://github.com"
PROBE_TIMEOUT_S = 5.0
IMAGE_SUFFIXES = {".nd2", ".czi", ".lif", ".tif", ".tiff"}
CAUSES = r"Failed to resolve '[^']*'|Connection refused|timed out|Network is unreachable"  # short skip reasons


class RealDataError(Exception):
    """The real files are there but wrong (a bad mirror, a file that fails its sha256): always a failure."""


class RealDataUnavailable(Exception):
    """No mirror and no download: the real-file tests skip (fail under CI=true)."""


@dataclass(frozen=True)
class Entry:
    name: str  # path under the data root, '/'-separated
    sha256: str
    url: str  # the file at a pinned commit of its source repository


def load_registry(path: Path = REGISTRY_PATH) -> dict[str, Entry]:
    """Parse ``name sha256 url`` lines; ``#`` starts a comment."""
    entries: dict[str, Entry] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3 or len(fields[1]) != 64 or fields[0] in entries:
            raise RealDataError(f"{path}:{number}: expected a new 'name sha256 url' line, got {line!r}")
        entries[fields[0]] = Entry(*fields)
    return entries


@functools.cache
def registry() -> dict[str, Entry]:
    """The committed registry, read once."""
    return load_registry()


def images(names: list[str] | set[str]) -> set[str]:
    """What a format test opens: image files by suffix, and each folder (zarr store) under ome-zarr/."""
    found = {n for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES and not n.startswith("ome-zarr/")}
    return found | {"/".join(n.split("/")[:2]) for n in names if n.startswith("ome-zarr/")}


def mirror_files(root: Path) -> set[str]:
    """Every sample file in a mirror folder: all files except README.md and LICENSES/."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).parts[0] not in {"README.md", "LICENSES"}}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mismatches(root: Path, entries: Mapping[str, Entry]) -> tuple[list[str], dict[str, str]]:
    """The names of ``entries`` missing under ``root``, and {name: actual sha256} of those that differ."""
    missing, wrong = [], {}
    for name, entry in sorted(entries.items()):
        path = root / name
        if not path.is_file():
            missing.append(name)
        elif (actual := sha256_of(path)) != entry.sha256:
            wrong[name] = actual
    return missing, wrong


def check_mirror(root: Path, entries: Mapping[str, Entry], origin: str) -> Path:
    """Return ``root`` when it holds every registry file with its sha256; else a RealDataError saying what to do."""
    if not root.is_dir():
        raise RealDataError(f"{origin}: {root} is not a folder; point {ENV_MIRROR} at a copy of the sample files "
                            f"(the layout of {REGISTRY_PATH.name}) or unset it to download them")
    missing, wrong = mismatches(root, entries)
    if len(missing) == len(entries):
        raise RealDataError(f"{origin}: {root} holds none of the {len(entries)} sample files of "
                            f"{REGISTRY_PATH.name} (e.g. {next(iter(sorted(entries)))}); point {ENV_MIRROR} at "
                            f"a copy of them, or unset it to download them")
    problems = [f"{root / name}: sha256 expected {entries[name].sha256}, got {actual}"
                for name, actual in wrong.items()]
    problems += [f"missing: {root / name}" for name in missing]
    if problems:
        raise RealDataError(f"{origin}: {root} does not match {REGISTRY_PATH.name} ({len(problems)} file(s)):\n  "
                            + "\n  ".join(problems) + f"\nReplace these files with the originals (the registry "
                            f"gives each one's source URL), or, if the mirror is right and the registry is stale, "
                            f"regenerate it: python -m tests.helpers.make_real_data_registry {root}")
    return root


def default_cache(env: Mapping[str, str]) -> Path:
    if env.get(ENV_CACHE):
        return Path(env[ENV_CACHE]).expanduser()
    import pooch

    return pooch.os_cache("timelapse-pipes") / "test-data"


def probe(url: str, timeout_s: float) -> str | None:
    """None when ``url`` answers within ``timeout_s`` (one try, in a thread so a stuck DNS lookup cannot hang us)."""
    import requests

    outcome: list[str | None] = ["no answer within %.0f s" % timeout_s]

    def attempt() -> None:
        try:
            requests.head(url, timeout=timeout_s, allow_redirects=False)
            outcome[0] = None
        except requests.RequestException as error:
            cause = re.search(CAUSES, str(error))
            outcome[0] = f"{type(error).__name__}: {cause.group(0) if cause else str(error)[:200]}"

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout_s + 1)
    return outcome[0]


def fetch(cache: Path, entries: Mapping[str, Entry], sibling: Path = SIBLING_MIRROR, probe_url: str = PROBE_URL,
          timeout_s: float = PROBE_TIMEOUT_S) -> Path:
    """Download what ``cache`` lacks (or holds with a wrong sha256) with pooch, and verify every file."""
    missing, wrong = mismatches(cache, entries)
    needed = sorted([*missing, *wrong])
    if not needed:
        return cache
    if (error := probe(probe_url, timeout_s)) is not None:
        raise RealDataUnavailable(
            f"the real sample files are not available: set {ENV_MIRROR} to a folder holding them, or run once "
            f"with network access (no mirror: {ENV_MIRROR} is unset and {sibling} does not exist; {len(needed)} of "
            f"{len(entries)} files not in the download cache {cache}; {probe_url} unreachable: {error})")
    import pooch
    import requests

    fetcher = pooch.create(path=cache, base_url="", retry_if_failed=2,
                           registry={name: f"sha256:{entries[name].sha256}" for name in needed},
                           urls={name: entries[name].url for name in needed})
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=60)
    for name in needed:
        try:
            fetcher.fetch(name, downloader=downloader)
        except ValueError as error:  # pooch's hash mismatch
            raise RealDataError(f"{name} downloaded from {entries[name].url} fails its sha256: {error}. "
                                f"The source changed or the registry is wrong; fix {REGISTRY_PATH}") from error
        except requests.HTTPError as error:
            if error.response is None or error.response.status_code >= 500:  # the server's trouble, not ours
                raise RealDataUnavailable(f"the real sample files are not available: downloading {name} from "
                                          f"{entries[name].url} failed ({error}). Set {ENV_MIRROR} to a folder "
                                          f"holding them, or retry later") from error
            raise RealDataError(f"downloading {name} from {entries[name].url} failed: {error} (the server "
                                f"answered, so the URL is wrong). Fix it in {REGISTRY_PATH}") from error
        except Exception as error:
            raise RealDataUnavailable(f"the real sample files are not available: downloading {name} from "
                                      f"{entries[name].url} failed ({type(error).__name__}: {error}). "
                                      f"Set {ENV_MIRROR} to a folder holding them") from error
    return check_mirror(cache, entries, "download cache")


def resolve(env: Mapping[str, str], entries: Mapping[str, Entry], sibling: Path = SIBLING_MIRROR,
            probe_url: str = PROBE_URL, timeout_s: float = PROBE_TIMEOUT_S) -> Path:
    """The data root: ``$TIMELAPSE_PIPES_TEST_DATA``, else ``sibling``, else the download cache (all verified)."""
    if env.get(ENV_MIRROR):
        return check_mirror(Path(env[ENV_MIRROR]).expanduser(), entries, f"{ENV_MIRROR}={env[ENV_MIRROR]}")
    if sibling.is_dir():
        return check_mirror(sibling, entries, "the sibling mirror")
    return fetch(default_cache(env), entries, sibling, probe_url, timeout_s)


@functools.cache
def session_root() -> Path | RealDataError | RealDataUnavailable:
    """:func:`resolve` for this process's environment, once; the exception is returned, not raised."""
    try:
        return resolve(os.environ, registry())
    except (RealDataError, RealDataUnavailable) as error:
        return error


def in_ci(env: Mapping[str, str]) -> bool:
    return env.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require(outcome: Path | RealDataError | RealDataUnavailable, env: Mapping[str, str]) -> Path:
    """For a fixture: the root, or pytest.skip (no data, outside CI) / pytest.fail (bad data, or CI)."""
    import pytest

    if isinstance(outcome, Path):
        return outcome
    if isinstance(outcome, RealDataUnavailable) and not in_ci(env):
        pytest.skip(str(outcome))
    suffix = " (CI=true: the real-file tests must run in CI)" if isinstance(outcome, RealDataUnavailable) else ""
    pytest.fail(str(outcome) + suffix, pytrace=False)
