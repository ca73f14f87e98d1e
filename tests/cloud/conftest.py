"""The servers the cloud tests share on 127.0.0.1: moto's ThreadedMotoServer for S3 (one per test
module), and one gcp-storage-emulator for GCS for the whole session (tensorstore reads GCS at one
endpoint per process: reading/fast/gcs.py)."""

from __future__ import annotations

import logging
import os
import socket

import pytest


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield server, f"http://{host}:{port}"
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def gcs_options():
    """gcsfs options for the session's GCS emulator: its endpoint, anonymous."""
    import socketserver

    from gcp_storage_emulator.server import create_server

    socketserver.TCPServer.request_queue_size = 1024  # the emulator's backlog of 5 stalls concurrent reads
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    yield {"endpoint_url": f"http://127.0.0.1:{port}", "token": "anon"}
    server.stop()
