"""Things going wrong mid-rollout: a bad download on one node, agents killed mid-upgrade."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from kubeos import __version__
from kubeos.agent.osinstance import PHASE_RANK
from kubeos.node import grubenv
from kubeos.sim.cluster import IMAGE_PATH, NEW_VERSION, OLD_VERSION, EmbeddedCluster
from tests.e2e.checks import ROLLOUT_TIMEOUT, assert_runs, events, node, os_status, osinstance

pytestmark = pytest.mark.slow


def test_bad_checksum_on_one_node_fails_it_and_spares_the_others(
    make_cluster: Callable[..., EmbeddedCluster],
) -> None:
    """D4: node-2 downloads different bytes; it refuses them and fails visibly (C5-style:
    phase failed + reason + Event, nodestatus kept, uncordoned, boot entry unchanged);
    its batch is not counted as done and the other nodes still upgrade."""
    cluster = make_cluster(nodes=4)
    assert cluster.monitor is not None
    cluster.images.corrupt_for("node-2", IMAGE_PATH)
    cluster.apply_os(cluster.upgrade_spec(maxunavailable=2))
    others = ["node-1", "node-3", "node-4"]
    cluster.monitor.wait(
        lambda s: (
            cluster.settled(s, others, NEW_VERSION)
            and (row := s.row("node-2")) is not None
            and row.phase == "failed"
        ),
        timeout=ROLLOUT_TIMEOUT,
    )
    assert_runs(cluster, others, NEW_VERSION, root="B")

    failed = osinstance(cluster, "node-2")
    assert failed["spec"]["nodestatus"] == "upgrade"  # left as it is for the admin
    assert "D4" in failed["status"]["reason"] and "does not match" in failed["status"]["reason"]
    assert not node(cluster, "node-2")["spec"].get("unschedulable"), "uncordoned after failure"
    machine = cluster.machines["node-2"]
    assert machine.os_version == OLD_VERSION and machine.booted_root == "A"
    assert machine.boots == 1, "a refused image never leads to a reboot"
    assert grubenv.saved_entry(machine.node) == "A", "boot entry never switched (U5)"
    warning = [e for e in events(cluster, "UpgradeFailed") if "node-2" in e["metadata"]["name"]]
    assert warning and warning[0]["type"] == "Warning"

    # The operator's view catches up with the nodes': 3 done, 1 failed, never Completed.
    status = cluster.monitor.wait(
        lambda _s: os_status(cluster).get("nodes", {}).get("done") == 3, timeout=30
    ) and os_status(cluster)
    assert status["nodes"]["failed"] == 1
    assert status["phase"] != "Completed"
    assert "node-2" in status["failedNodes"]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and "node-2" in degraded["message"]


def test_agents_killed_mid_upgrade_resume_and_finish(
    make_cluster: Callable[..., EmbeddedCluster],
) -> None:
    """Item 5: SIGKILL an agent while it drains, while it fetches, and right when it is about
    to reboot; each restarted agent continues from the OSInstance status and its node ends
    upgraded, rebooted exactly once."""
    cluster = make_cluster(nodes=3)
    cluster.images.delays["node-2"] = 1.0  # a slow link: node-2 is killed mid-download
    kill_at = {"node-1": "draining", "node-2": "fetching", "node-3": "rebooting"}
    killed: dict[str, str] = {}
    done = threading.Event()

    def due(items: list[dict]) -> list[tuple[str, str]]:
        # At the phase or, if the agent was quicker than this observer, later - never done.
        found = []
        for o in items:
            name, phase = o["metadata"]["name"], (o.get("status") or {}).get("phase", "")
            if name in killed or name not in kill_at or phase in ("", "done", "failed"):
                continue
            if PHASE_RANK[phase] >= PHASE_RANK[kill_at[name]]:
                found.append((name, phase))
        return found

    def killer() -> None:
        while len(killed) < len(kill_at) and not done.is_set():
            try:
                names = cluster.api.wait_for("osinstances", due, timeout=1.0)
            except TimeoutError:
                continue
            for name, phase in names:
                cluster.machines[name].kill_agent()
                killed[name] = phase

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        cluster.apply_os(cluster.upgrade_spec(maxunavailable=3))
        cluster.wait_rollout(NEW_VERSION, timeout=ROLLOUT_TIMEOUT)
    finally:
        done.set()
        thread.join(timeout=5)

    assert set(killed) == set(kill_at), f"not every kill happened: {killed}"
    assert killed["node-2"] == "fetching", "killed while its download was in flight"
    nodes = sorted(cluster.machines)
    assert_runs(cluster, nodes, NEW_VERSION, root="B")
    for name in nodes:
        assert cluster.machines[name].boots == 2, f"{name} rebooted exactly once"
        log = cluster.machines[name].log_path.read_text()
        assert log.count(f"kubeos-agent {__version__} on node") >= 3, "started, killed, rebooted"
    assert os_status(cluster)["nodes"]["failed"] == 0


def test_failed_node_recovers_when_the_admin_applies_again(
    make_cluster: Callable[..., EmbeddedCluster],
) -> None:
    """U7: after a failure the admin changes the OS and applies it again: the new
    generation is a new dispatch, and the failed node now upgrades like the others."""
    cluster = make_cluster(nodes=2)
    assert cluster.monitor is not None
    cluster.images.corrupt_for("node-2", IMAGE_PATH)
    cluster.apply_os(cluster.upgrade_spec(maxunavailable=2))
    cluster.monitor.wait(
        lambda s: (row := s.row("node-2")) is not None and row.phase == "failed",
        timeout=ROLLOUT_TIMEOUT,
    )
    first = osinstance(cluster, "node-2")["status"]["dispatch"]
    cluster.images.overrides.clear()  # the image server is fixed
    cluster.apply_os(cluster.upgrade_spec(maxunavailable=1))  # changed: a new generation
    cluster.wait_rollout(NEW_VERSION, timeout=ROLLOUT_TIMEOUT)
    assert_runs(cluster, ["node-1", "node-2"], NEW_VERSION, root="B")
    assert osinstance(cluster, "node-2")["status"]["dispatch"] != first
    assert cluster.machines["node-2"].boots == 2
