"""http(s):// manifests and images, served by a real HTTP server on 127.0.0.1 (with Range support)."""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading

import numpy as np
import pytest

import timelapse_pipes as tp
from timelapse_pipes.testing import collect

pytestmark = [pytest.mark.timeout(120), pytest.mark.cloud]


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """The standard library's file server plus single byte ranges (what fsspec's HTTP reads use)."""

    def log_message(self, *args):  # quiet
        pass

    def send_head(self):
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        path = self.translate_path(self.path)
        if not match or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start = int(match[1]) if match[1] else max(size - int(match[2]), 0)
        end = min(int(match[2]) if match[1] and match[2] else size - 1, size - 1)
        handle = open(path, "rb")
        handle.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return handle

    def copyfile(self, source, outputfile):
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        outputfile.write(source.read(remaining))
        source.close()


@pytest.fixture(scope="module")
def http_root(synthetic):
    folder = synthetic["zarr_v3"].parent
    (folder / "manifest.csv").write_text("path,channel,split\nmovie_2d.ome.zarr,1,train\nmovie.tif,0,train\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("key,spatial", [("zarr_v3", 3), ("zarr_v2", 3), ("tiff", 2), ("czi", 2)])
def test_http_pixels_equal_local(http_root, synthetic, key, spatial, tmp_path):
    build = dict(split=None, spatial_dims=spatial, num_timepoints=2, samples_per_epoch=2)
    local = collect(tp.build_loader({"dict_meta": {"path": [str(synthetic[key])]}}, **build))
    remote = collect(tp.build_loader({"dict_meta": {"path": [f"{http_root}/{synthetic[key].name}"]}},
                                     stage_dir=str(tmp_path), **build))
    for a, b in zip(local, remote):
        assert a["T"].tolist() == b["T"].tolist() and np.array_equal(a["raw"].numpy(), b["raw"].numpy())


def test_http_manifest(http_root):
    loader = tp.build_loader(f"{http_root}/manifest.csv", spatial_dims=2, crop={"roi_size": [16, 16]},
                             samples_per_epoch=4, batch_size=2)
    paths = {p for batch in collect(loader) for p in batch["original_path"]}
    assert paths == {f"{http_root}/movie_2d.ome.zarr", f"{http_root}/movie.tif"}


def test_missing_http_file_fails_with_the_url(http_root):
    url = f"{http_root}/nothing.ome.zarr"
    with pytest.raises(tp.ImageReadError, match="not found") as raised:
        next(iter(tp.build_loader({"dict_meta": {"path": [url]}}, split=None)))
    assert url in str(raised.value)
