"""End-to-end fixtures: an embedded cluster (API stand-in, operator, simulated machines).

Each machine runs the real agent as its own process with the real plugins; only the
reboot (a plugin) and the kubelet are simulated. Tests assert on the API objects, on
the machines' disks and host roots, and on the monitor's full history of states.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubeos.sim.cluster import ClusterConfig, EmbeddedCluster
from tests.support.disk import missing_tools

pytestmark = pytest.mark.slow


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., EmbeddedCluster]]:
    """Start an embedded cluster: make_cluster(nodes=6, labels={2: {...}})."""
    missing = missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/setup installs them)")
    started: list[EmbeddedCluster] = []

    def make(**kwargs: object) -> EmbeddedCluster:
        cluster = EmbeddedCluster(tmp_path / f"cluster{len(started)}", ClusterConfig(**kwargs))
        started.append(cluster)
        return cluster.start()

    yield make
    for cluster in started:
        cluster.stop()
