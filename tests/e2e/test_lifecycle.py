"""One cluster's life: parallel upgrade of 6 nodes, a config rollout, a rollback (R3).

The tests run in file order on one module-scoped cluster (each starts from the state the
previous one left): that is the admin's sequence U1 -> C1 -> R3 from the user guide.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeos.sim.cluster import NEW_VERSION, OLD_VERSION, ClusterConfig, EmbeddedCluster
from tests.e2e.checks import ROLLOUT_TIMEOUT, assert_runs, events, node, os_status, osinstance
from tests.support.disk import missing_tools

pytestmark = pytest.mark.slow
NODES = [f"node-{i}" for i in range(1, 7)]
PERSIST_CONF = "/etc/kubeos-sysctl.conf"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    missing = missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/setup installs them)")
    workdir: Path = tmp_path_factory.mktemp("lifecycle")
    with EmbeddedCluster(workdir, ClusterConfig(nodes=6)) as c:
        yield c


def test_parallel_upgrade_of_six_nodes_two_at_a_time(cluster: EmbeddedCluster) -> None:
    """U1/E1: batches of maxunavailable=2 run concurrently; never more than 2 in progress."""
    assert cluster.monitor is not None
    cluster.apply_os(cluster.upgrade_spec(maxunavailable=2, executionmode="parallel"))
    cluster.wait_rollout(NEW_VERSION, timeout=ROLLOUT_TIMEOUT)

    assert cluster.monitor.max_busy() == 2  # at most maxunavailable, and it did run 2 at once
    assert_runs(cluster, NODES, NEW_VERSION, root="B")
    assert all(m.boots == 2 for m in cluster.machines.values()), "each node reboots once"
    # U4: the ReplicaSet pods were evicted; the DaemonSet pods stay on their nodes.
    pods = {p["metadata"]["name"] for p in cluster.api.list("pods", "default")}
    assert pods == {f"node-exporter-{n}" for n in NODES}
    # Every agent talked to the API as itself, and evicted through the Eviction API.
    agent_calls = [r for r in cluster.api.audit if r.user_agent.startswith("kubeos-agent/")]
    assert {(r.resource, r.subresource) for r in agent_calls if r.verb == "create"} >= {
        ("pods", "eviction"),
        ("events", ""),
    }
    assert len(events(cluster, "UpgradeSucceeded")) == 6
    for name in NODES:
        assert osinstance(cluster, name)["status"]["pinnedcurrent"] == "A"  # B3


def test_config_rollout_persists_sysctl_under_each_host_root(cluster: EmbeddedCluster) -> None:
    """C1-C3: opstype config on nodes running osversion; status.sysconfigs.version set."""
    spec = {
        "imagetype": "",
        "opstype": "config",
        "osversion": NEW_VERSION,
        "maxunavailable": 3,
        "containerimage": "",
        "evictpodforce": False,
        "checksum": "",
        "timeinterval": 0,
        "sysconfigs": {
            "version": "2",
            "configs": [
                {
                    "model": "kernel.sysctl.persist",
                    "configpath": PERSIST_CONF,
                    "contents": [{"key": "user.max_user_namespaces", "value": "16384"}],
                },
                {
                    "model": "kernel.sysctl",
                    "contents": [{"key": "net.ipv4.ip_forward", "value": "1"}],
                },
            ],
        },
        # Applied before upgrades only (U3): a config neither applies nor waits for it.
        "upgradeconfigs": {"version": "u1", "configs": []},
    }
    cluster.apply_os(spec)
    assert cluster.monitor is not None
    cluster.monitor.wait(
        lambda s: all(
            osinstance(cluster, n).get("status", {}).get("sysconfigs", {}).get("version") == "2"
            and r.nodestatus == "idle"
            for n in NODES
            if (r := s.row(n)) is not None
        ),
        timeout=ROLLOUT_TIMEOUT,
    )
    for name in NODES:
        machine = cluster.machines[name]
        conf = machine.node.host_path(PERSIST_CONF).read_text()
        assert "user.max_user_namespaces = 16384" in conf
        assert (machine.node.proc_sys / "net/ipv4/ip_forward").read_text().strip() == "1"
        assert machine.boots == 2, "a config does not reboot"
        assert not node(cluster, name)["spec"].get("unschedulable"), "a config does not drain"
    assert len(events(cluster, "Configured")) == 6
    # C2: a new generation with the same versions finds nothing to do on any node.
    dispatches = {n: osinstance(cluster, n)["spec"]["dispatch"] for n in NODES}
    cluster.apply_os({**spec, "maxunavailable": 2})
    time.sleep(2)
    assert {n: osinstance(cluster, n)["spec"]["dispatch"] for n in NODES} == dispatches
    assert len(events(cluster, "Configured")) == 6


def test_rollback_returns_every_node_to_the_previous_root(cluster: EmbeddedCluster) -> None:
    """R3: opstype rollback switches to the previous partition; nothing is fetched."""
    fetched_before = len(cluster.images.requests)
    assert cluster.monitor is not None
    since = cluster.monitor.elapsed()
    spec = {
        "imagetype": "",
        "opstype": "rollback",
        "osversion": OLD_VERSION,
        "maxunavailable": 3,
        "containerimage": "",
        "evictpodforce": True,
        "imageurl": "",
        "checksum": "",
        "flagSafe": False,
        "mtls": False,
        "timeinterval": 0,
    }
    cluster.apply_os(spec)
    cluster.wait_rollout(OLD_VERSION, timeout=ROLLOUT_TIMEOUT)
    assert_runs(cluster, NODES, OLD_VERSION, root="A")
    assert len(cluster.images.requests) == fetched_before, "a rollback fetches nothing"
    assert 1 <= cluster.monitor.max_busy(since) <= 3
    assert os_status(cluster).get("nodes", {}).get("failed") == 0
