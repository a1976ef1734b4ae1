"""Container-image tests: real containerd, docker-registry and dockerd, one of each per session.

Each daemon starts at most once, when a test first needs it, lives in a temp dir, and is
stopped by PID at the end of the session. A daemon that cannot run here skips the tests
that need it, with its log as the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.container.daemons import (
    Containerd,
    DaemonFailed,
    Dockerd,
    Registry,
    missing,
    start_containerd,
    start_dockerd,
    start_registry,
)
from tests.container.helpers import on_containerd
from tests.support.disk import TestNode
from tests.support.fixtures import disk_node, plugin_host_with_recorder  # noqa: F401


def _require(*tools: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (containerd, dockerd, device nodes)")
    absent = missing(*tools)
    if absent:
        pytest.skip(f"needs {', '.join(absent)} (scripts/setup installs them)")


@pytest.fixture(scope="session")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    _require("containerd", "ctr")
    try:
        daemon = start_containerd(tmp_path_factory.mktemp("containerd"))
    except DaemonFailed as exc:
        pytest.skip(f"containerd cannot run here: {exc}")
    yield daemon
    daemon.daemon.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    _require("docker-registry")
    try:
        daemon = start_registry(tmp_path_factory.mktemp("registry"))
    except DaemonFailed as exc:
        pytest.skip(f"docker-registry cannot run here: {exc}")
    yield daemon
    daemon.daemon.stop()


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory, containerd: Containerd) -> Iterator[Dockerd]:
    _require("dockerd", "docker")
    try:
        daemon = start_dockerd(tmp_path_factory.mktemp("dockerd"), containerd)
    except DaemonFailed as exc:
        pytest.skip(f"dockerd cannot run here: {exc}")
    yield daemon
    daemon.daemon.stop()


@pytest.fixture
def containerd_node(
    disk_node: TestNode,  # noqa: F811 - the fixture imported above
    containerd: Containerd,
    registry: Registry,
) -> TestNode:
    return on_containerd(disk_node, containerd, registry)
