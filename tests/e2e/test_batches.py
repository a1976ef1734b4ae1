"""Which nodes, how many at once: serial mode (E2) and the node selector (N1-N3)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kubeos import NODE_SELECTOR_LABEL
from kubeos.sim.cluster import NEW_VERSION, OLD_VERSION, EmbeddedCluster
from tests.e2e.checks import ROLLOUT_TIMEOUT, assert_runs, assert_untouched, os_status

pytestmark = pytest.mark.slow


def test_serial_rollout_of_six_nodes_handles_one_node_at_a_time(
    make_cluster: Callable[..., EmbeddedCluster],
) -> None:
    """E2/I4: batches of 2, but inside a batch the nodes go one after another."""
    cluster = make_cluster(nodes=6)
    assert cluster.monitor is not None
    cluster.apply_os(cluster.upgrade_spec(maxunavailable=2, executionmode="serial"))
    cluster.wait_rollout(NEW_VERSION, timeout=ROLLOUT_TIMEOUT)

    nodes = sorted(cluster.machines)
    assert_runs(cluster, nodes, NEW_VERSION, root="B")
    assert cluster.monitor.max_busy() == 1, "serial: never two nodes at once"
    # Each node finished before the next one started: the busy periods do not overlap.
    order = []
    for snap in cluster.monitor.history:
        for name in sorted(snap.busy):
            if name not in order:
                order.append(name)
    assert sorted(order) == nodes


def test_nodeselector_rollout_touches_only_labelled_nodes(
    make_cluster: Callable[..., EmbeddedCluster],
) -> None:
    """N1: nodeselector 'edge' selects nodes labelled upgrade.openeuler.org/node-selector=edge;
    N3: a node whose label value is "" is a different class and is left alone."""
    cluster = make_cluster(
        nodes=4,
        labels={2: {NODE_SELECTOR_LABEL: "edge"}, 3: {NODE_SELECTOR_LABEL: ""}},
    )
    cluster.label("node-4", "edge")  # labelled after the cluster came up
    cluster.apply_os(cluster.upgrade_spec(maxunavailable=4, nodeselector="edge"))
    cluster.wait_rollout(NEW_VERSION, nodes=["node-2", "node-4"], timeout=ROLLOUT_TIMEOUT)

    assert_runs(cluster, ["node-2", "node-4"], NEW_VERSION, root="B")
    assert os_status(cluster)["nodes"]["total"] == 2
    assert_untouched(cluster, ["node-1", "node-3"], OLD_VERSION)
