"""The real-data resolver (tests/helpers/real_data.py) and its registry: mirrors, downloads, sha256 checks,
skip/fail."""

from __future__ import annotations

import functools
import http.server
import re
import socket
import threading
from pathlib import Path

import pytest

from tests.helpers import real_data
from tests.helpers.make_real_data_registry import build, parse_sources
from tests.helpers.real_data import (
    ENV_CACHE,
    ENV_MIRROR,
    Entry,
    RealDataError,
    RealDataUnavailable,
    resolve,
)

FILES = {"nd2/a.nd2": b"nikon" * 100, "ome-zarr/s.zarr/.zattrs": b"{}", "ome-zarr/s.zarr/0/0/0": b"\x00\x01" * 50}


def _closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


def _write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _entries(root: Path, base_url: str = "https://example.invalid/") -> dict[str, Entry]:
    return {name: Entry(name, real_data.sha256_of(root / name), base_url + name) for name in FILES}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return _write(tmp_path / "source", FILES)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(source: Path):
    """A loopback HTTP server over ``source``: a real download, with no internet."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(source)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.real_data  # the committed registry
def test_registry_lines_are_pinned_and_hashed():
    entries = real_data.registry()
    assert entries and all(re.fullmatch(r"[0-9a-f]{64}", e.sha256) for e in entries.values())
    pinned = re.compile(r"https://github\.com/[\w.-]+/[\w.-]+/raw/[0-9a-f]{7,40}/\S+")
    assert [e.url for e in entries.values() if not pinned.fullmatch(e.url)] == []
    assert not [n for n in entries if n.startswith(("LICENSES/", "README.md")) or n.startswith("/")]


def test_registry_covers_exactly_the_files_of_the_data_root(shared_data):
    assert real_data.mirror_files(shared_data) == set(real_data.registry())


def test_registry_regenerates_from_a_mirror_and_its_readme(shared_data):
    if not (shared_data / "README.md").is_file():
        pytest.skip(f"{shared_data} has no README.md source table (a download cache)")
    assert build(shared_data, []) == real_data.REGISTRY_PATH.read_text(), \
        "stale registry: run python -m tests.helpers.make_real_data_registry"


def test_a_mirror_file_with_other_bytes_fails_naming_it(source):
    entries = _entries(source)
    (source / "ome-zarr/s.zarr/0/0/0").write_bytes(b"\x00\x02" * 50)
    with pytest.raises(RealDataError) as raised:
        resolve({ENV_MIRROR: str(source)}, entries)
    text = str(raised.value)
    assert str(source / "ome-zarr/s.zarr/0/0/0") in text and entries["ome-zarr/s.zarr/0/0/0"].sha256 in text
    assert real_data.sha256_of(source / "ome-zarr/s.zarr/0/0/0") in text and "nd2/a.nd2" not in text
    assert "Replace these files" in text and "make_real_data_registry" in text


def test_a_mirror_missing_a_file_fails_naming_it(source):
    entries = _entries(source)
    (source / "nd2/a.nd2").unlink()
    with pytest.raises(RealDataError, match=rf"missing: {re.escape(str(source / 'nd2/a.nd2'))}"):
        resolve({}, entries, sibling=source)


@pytest.mark.parametrize("kind", ["empty", "absent"])
def test_a_mirror_that_is_empty_or_absent_is_refused(source, tmp_path, kind):
    mirror = tmp_path / kind
    if kind == "empty":
        mirror.mkdir()
    with pytest.raises(RealDataError) as raised:
        resolve({ENV_MIRROR: str(mirror)}, _entries(source))
    text = str(raised.value)
    assert f"{ENV_MIRROR}={mirror}" in text and str(mirror) in text
    assert ("holds none of the 3 sample files" if kind == "empty" else "is not a folder") in text


def test_the_env_mirror_comes_before_the_sibling(source, tmp_path):
    assert resolve({ENV_MIRROR: str(source)}, _entries(source), sibling=tmp_path / "empty") == source
    assert resolve({}, _entries(source), sibling=source) == source


def test_no_mirror_and_no_network_skips_or_fails_in_ci(source, tmp_path):
    env = {ENV_CACHE: str(tmp_path / "cache")}
    with pytest.raises(RealDataUnavailable) as raised:
        resolve(env, _entries(source), sibling=tmp_path / "absent", probe_url=_closed_url(), timeout_s=2)
    reason = str(raised.value)
    assert ENV_MIRROR in reason and "unreachable" in reason and str(tmp_path / "cache") in reason
    with pytest.raises(pytest.skip.Exception, match=ENV_MIRROR):
        real_data.require(raised.value, {})
    with pytest.raises(pytest.fail.Exception, match=rf"{ENV_MIRROR}.*CI=true"):
        real_data.require(raised.value, {"CI": "true"})
    with pytest.raises(pytest.fail.Exception, match="sha256"):  # a bad file fails, in CI or not
        real_data.require(RealDataError("x: sha256 expected a, got b"), {})


def test_download_keeps_the_layout_verifies_and_then_works_offline(source, server, tmp_path):
    entries = _entries(source, server)
    env = {ENV_CACHE: str(tmp_path / "cache")}
    root = resolve(env, entries, sibling=tmp_path / "absent", probe_url=server)
    assert root == tmp_path / "cache"
    assert {n: (root / n).read_bytes() for n in FILES} == FILES  # zarr stores stay folders
    assert resolve(env, entries, sibling=tmp_path / "absent", probe_url=_closed_url(), timeout_s=2) == root
    (root / "nd2/a.nd2").write_bytes(b"corrupt")  # a damaged cache file is fetched again
    assert resolve(env, entries, sibling=tmp_path / "absent", probe_url=server) == root
    assert (root / "nd2/a.nd2").read_bytes() == FILES["nd2/a.nd2"]


def test_a_download_with_other_bytes_fails_naming_it(source, server, tmp_path):
    entries = _entries(source, server)
    (source / "nd2/a.nd2").write_bytes(b"changed upstream")
    with pytest.raises(RealDataError, match=r"nd2/a\.nd2 downloaded from .* fails its sha256"):
        resolve({ENV_CACHE: str(tmp_path / "cache")}, entries, sibling=tmp_path / "absent", probe_url=server)


def test_a_download_url_the_server_does_not_have_fails_naming_it(source, server, tmp_path):
    entries = _entries(source, server)
    entries["nd2/a.nd2"] = Entry("nd2/a.nd2", entries["nd2/a.nd2"].sha256, server + "moved/a.nd2")
    with pytest.raises(RealDataError, match=r"downloading nd2/a\.nd2 from .*moved/a\.nd2 failed: 404.*URL is wrong"):
        resolve({ENV_CACHE: str(tmp_path / "cache")}, entries, sibling=tmp_path / "absent", probe_url=server)


def test_registry_script_reads_the_readme_table(source, tmp_path):
    readme = ("| file | dims | source repo@commit:path | licence |\n|---|---|---|---|\n"
              "| nd2/a.nd2 | 1 | o/r@abcdef12:pkg/tests/data/a.nd2 | MIT |\n"
              "| ome-zarr/s.zarr/0 and /1 | 1 | same repo, tests/data/zarr/s.zarr | MIT |\n")
    (source / "README.md").write_text(readme)
    (source / "LICENSES").mkdir()
    (source / "LICENSES" / "r").write_text("MIT")
    assert parse_sources(source / "README.md")["ome-zarr/s.zarr"].path == "pkg/tests/data/zarr/s.zarr"
    text = build(source, ["abcdef1234567890abcdef1234567890abcdef12"], registry=tmp_path / "none.txt")
    (tmp_path / "registry.txt").write_text(text)
    entries = real_data.load_registry(tmp_path / "registry.txt")
    assert set(entries) == set(FILES)
    assert entries["ome-zarr/s.zarr/0/0/0"].url == ("https://github.com/o/r/raw/abcdef1234567890abcdef1234567890"
                                                    "abcdef12/pkg/tests/data/zarr/s.zarr/0/0/0")
    assert resolve({ENV_MIRROR: str(source)}, entries) == source
