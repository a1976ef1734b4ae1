"""Every plain API request is bounded in time; watch streams keep their own timeout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client, watch
from urllib3.exceptions import MaxRetryError, ReadTimeoutError

from kubeos.kube.client import api_client
from kubeos.sim.apiserver import ApiServer


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a half-open API server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            held.append(conn)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    t.join(5)
    for c in held:
        c.close()
    sock.close()


def test_a_request_to_a_silent_server_times_out(silent_server: str) -> None:
    core = client.CoreV1Api(api_client(server=silent_server, request_timeout=(1.0, 1.0)))
    start = time.monotonic()
    with pytest.raises((ReadTimeoutError, MaxRetryError)) as exc:
        core.read_node("node-1")
    assert "Read timed out" in str(exc.value)
    assert time.monotonic() - start < 15  # urllib3 retries a GET: 4 tries of 1 s


def test_a_watch_outlives_the_request_timeout() -> None:
    with ApiServer() as api:
        core = client.CoreV1Api(api_client(server=api.url, request_timeout=(1.0, 1.0)))
        start = time.monotonic()
        events = list(watch.Watch().stream(core.list_node, timeout_seconds=3))
        assert events == []
        assert time.monotonic() - start >= 2.5
