"""Disk-upgrade tests share the support fixtures (real disks, real TLS)."""

import pytest

from tests.support.fixtures import (  # noqa: F401
    certs,
    disk_node,
    disk_tools,
    plugin_host_with_recorder,
)


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The image servers are on 127.0.0.1: a proxy from the environment must not intercept."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
