"""A real-HTTP API stand-in per test, operators running in threads, and a minimal fake agent."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

import pytest

from kubeos.operator.service import Operator
from kubeos.sim.apiserver import ApiServer

FAST = {
    "lease_duration": 2.0,
    "renew_deadline": 1.5,
    "retry_period": 0.2,
    "resync": 2.0,
    "min_round_gap": 0.05,
    "watch_timeout": 30,
    "tz": UTC,
}


@pytest.fixture
def api() -> Iterator[ApiServer]:
    with ApiServer(watch_timeout=30, bookmark_interval=0.2) as server:
        yield server


class Running:
    """An Operator running in a thread until stopped."""

    def __init__(self, operator: Operator) -> None:
        self.operator = operator
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=operator.run, args=(self.stop_event,), name=f"op-{operator.identity}",
            daemon=True,
        )

    def start(self) -> Running:
        self.thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the operator did not stop"


@pytest.fixture
def start_operator(api: ApiServer) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def start(identity: str = "op-1", **kw: Any) -> Running:
        opts = {**FAST, **kw}
        r = Running(Operator(api.api_client(), "default", identity=identity, **opts)).start()
        running.append(r)
        return r

    yield start
    for r in running:
        if r.thread.is_alive():
            r.stop()
