"""Assertions over an embedded cluster's API objects and machines."""

from __future__ import annotations

from typing import Any

from kubeos.sim.cluster import EmbeddedCluster

#: Generous: a loaded 2-core CI machine starts six agent processes twice per rollout.
ROLLOUT_TIMEOUT = 150.0


def osinstance(cluster: EmbeddedCluster, name: str) -> dict[str, Any]:
    return cluster.api.get("osinstances", name, cluster.config.namespace)


def node(cluster: EmbeddedCluster, name: str) -> dict[str, Any]:
    return cluster.api.get("nodes", name, "")


def os_status(cluster: EmbeddedCluster) -> dict[str, Any]:
    return cluster.api.get("os", "os-sample", cluster.config.namespace).get("status") or {}


def events(cluster: EmbeddedCluster, reason: str) -> list[dict[str, Any]]:
    return [
        e for e in cluster.api.list("events", cluster.config.namespace) if e.get("reason") == reason
    ]


def assert_runs(cluster: EmbeddedCluster, names: list[str], version: str, root: str) -> None:
    """U6: back, running `version` from `root`, idle, done and schedulable."""
    for name in names:
        machine = cluster.machines[name]
        assert machine.os_version == version, name
        assert machine.booted_root == root, name
        n = node(cluster, name)
        assert n["status"]["nodeInfo"]["osImage"] == version, name
        assert not n["spec"].get("unschedulable"), f"{name} left cordoned"
        osi = osinstance(cluster, name)
        assert osi["spec"]["nodestatus"] == "idle", name
        assert osi["status"]["phase"] == "done", name


def assert_untouched(cluster: EmbeddedCluster, names: list[str], version: str) -> None:
    """Never dispatched: still on root A with `version`, never rebooted, never busy."""
    assert cluster.monitor is not None
    busy = cluster.monitor.ever_busy()
    for name in names:
        machine = cluster.machines[name]
        assert machine.os_version == version, name
        assert machine.booted_root == "A", name
        assert machine.boots == 1, name
        assert name not in busy, name
        assert osinstance(cluster, name)["spec"].get("nodestatus") == "idle", name
        assert not node(cluster, name)["spec"].get("unschedulable"), name
