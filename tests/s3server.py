"""A real S3 API for tests: `moto_server` in a subprocess on 127.0.0.1, on a free port.

`tests/conftest.py` turns it into fixtures (`s3_endpoint`, `s3_storage_options`, `s3_bucket`);
use `moto_server()` directly for a server with its own settings (e.g. one that enforces
authentication, to see permission errors).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping

#: Credentials moto accepts; real ones must never reach the test server (or leave the machine).
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
#: Variables that would point boto at a real account or another endpoint.
UNSET_AWS_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server(env: Mapping[str, str] | None = None, timeout: float = 30.0) -> Iterator[str]:
    """Runs `python -m moto.server` until the block ends; yields its endpoint URL.

    `env` adds environment variables for the server (moto reads its settings from them,
    e.g. ``INITIAL_NO_AUTH_ACTION_COUNT=0`` makes it check credentials).
    """
    port = free_port()
    server_env = {**os.environ, **DUMMY_AWS_ENV, **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(endpoint, process, timeout)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers: up
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto_server did not answer on {endpoint} within {timeout} s")
