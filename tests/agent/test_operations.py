"""The agent's operations against the API stand-in on a real disk-image node.

Resumability (issue 6 item 5): the agent may be killed at any point. A kill is modelled
the only honest way without a process: the OSInstance (and the node) are left exactly as
a killed agent leaves them, and a fresh agent is started on them.
"""

from __future__ import annotations

import pytest

from kubeos.agent import localstate
from kubeos.agent.osinstance import Superseded
from kubeos.node import grubenv
from kubeos.node.layout import find_layout
from tests.agent.conftest import NEW, NODE, OLD, AgentEnv


def test_agent_creates_its_osinstance_idle_with_empty_versions(env: AgentEnv) -> None:
    env.agent().store.ensure()
    osi = env.osinstance()
    assert osi["spec"] == {"nodestatus": "idle", "dispatch": ""}
    assert osi["status"]["sysconfigs"] == {"version": ""}
    assert osi["status"]["upgradeconfigs"] == {"version": ""}
    agents = {r.user_agent for r in env.api.audit if r.resource == "osinstances"}
    assert agents == {"kubeos-agent/0.1.0"}


def test_upgrade_drains_installs_reboots_then_finishes_after_the_boot(env: AgentEnv) -> None:
    """U3-U6: cordon+drain, upgradeconfigs, install on B, switch, reboot; after the boot:
    check, sysconfigs, uncordon, idle, versions recorded; B3 pinned current is A."""
    env.agent().store.ensure()
    dispatch = env.dispatch(
        env.upgrade_spec(
            upgradeconfigs={
                "version": "u1",
                "configs": [
                    {
                        "model": "kernel.sysctl",
                        "contents": [{"key": "vm.max_map_count", "value": "262144"}],
                    }
                ],
            },
            sysconfigs={
                "version": "s1",
                "configs": [
                    {
                        "model": "kernel.sysctl",
                        "contents": [{"key": "kernel.pid_max", "value": "65536"}],
                    }
                ],
            },
        )
    )
    env.run()
    st = env.status()
    assert (st["dispatch"], st["phase"], st["pinnedcurrent"]) == (dispatch, "rebooting", "A")
    assert st["upgradeconfigs"]["version"] == "u1"
    assert (env.node.proc_sys / "vm/max_map_count").read_text().strip() == "262144"
    assert env.node_obj()["spec"]["unschedulable"] is True
    assert grubenv.saved_entry(env.node) == "B"
    assert len(env.reboots.requests) == 1

    assert env.boot() == ("B", NEW)
    env.run()  # a fresh agent after the reboot
    osi = env.osinstance()
    assert osi["spec"]["nodestatus"] == "idle"
    assert osi["status"]["phase"] == "done"
    assert osi["status"]["sysconfigs"]["version"] == "s1"
    assert (env.node.proc_sys / "kernel/pid_max").read_text().strip() == "65536"
    assert env.node_obj()["spec"]["unschedulable"] is False
    assert len(env.reboots.requests) == 1
    reasons = {e["reason"] for e in env.api.list("events")}
    assert "UpgradeSucceeded" in reasons


@pytest.mark.parametrize("killed_in", ["draining", "fetching", "installing"])
def test_agent_killed_before_the_reboot_resumes_from_the_record(
    env: AgentEnv, killed_in: str
) -> None:
    """A fresh agent finds phase `killed_in` (root B maybe half-written) and completes once."""
    env.agent().store.ensure()
    dispatch = env.dispatch(env.upgrade_spec())
    osi = env.osinstance()
    osi["status"] = {
        **osi["status"],
        "dispatch": dispatch,
        "phase": killed_in,
        "pinnedcurrent": "A",
    }
    env.api.replace("osinstances", osi, status=True)
    if killed_in != "draining":  # bytes of an interrupted download on root B
        b = find_layout(env.node).b
        with open(b.path, "r+b") as f:
            f.seek(b.offset)
            f.write(b"\xde\xad" * 100_000)
    env.run()
    st = env.status()
    assert st["phase"] == "rebooting" and len(env.reboots.requests) == 1
    env.boot()
    env.run()
    assert env.status()["phase"] == "done"
    assert env.osinstance()["spec"]["nodestatus"] == "idle"
    assert len(env.reboots.requests) == 1


def test_reboot_that_did_not_happen_is_requested_again_then_fails(env: AgentEnv) -> None:
    """Killed after recording `rebooting` but before the machine went down: the boot id is
    unchanged, so the new agent asks again - and gives up with a reason after 3 tries."""
    env.agent().store.ensure()
    env.dispatch(env.upgrade_spec())
    env.run()
    assert len(env.reboots.requests) == 1
    record = localstate.load(env.node)
    assert record is not None and record.boot_id == localstate.boot_id(env.node)
    env.run()
    env.run()
    assert len(env.reboots.requests) == 3
    assert env.status()["phase"] == "rebooting"
    env.run()
    st = env.status()
    assert st["phase"] == "failed" and "did not restart" in st["reason"]
    assert env.node_obj()["spec"]["unschedulable"] is False


def test_boot_into_the_wrong_root_fails_with_the_reason(env: AgentEnv) -> None:
    """U6: the machine came back on the old root (e.g. fell back): failed, not done."""
    env.agent().store.ensure()
    env.dispatch(env.upgrade_spec())
    env.run()
    grubenv.set_saved_entry(env.node, "A")  # the firmware/admin picked the old entry
    assert env.boot() == ("A", OLD)
    env.run()
    st = env.status()
    assert st["phase"] == "failed" and "expected root B" in st["reason"]
    assert env.osinstance()["spec"]["nodestatus"] == "upgrade"
    assert env.node_obj()["spec"]["unschedulable"] is False
    assert any(e["reason"] == "UpgradeFailed" for e in env.api.list("events"))


def test_stale_agent_cannot_move_the_record_back(env: AgentEnv) -> None:
    """Every status write is conditional: an agent holding an old copy gets Superseded."""
    agent = env.agent()
    stale = agent.store.ensure()
    dispatch = env.dispatch(env.upgrade_spec())
    fresh = agent.store.set_progress(env.osinstance(), dispatch, phase="fetching")
    with pytest.raises(Superseded):
        agent.store.set_progress(stale, dispatch, phase="draining")
    with pytest.raises(Superseded):  # a dispatch the operator no longer asks for
        agent.store.set_progress(fresh, "other-uid:9", phase="done")
    assert env.status()["phase"] == "fetching"


def test_rollback_with_nothing_on_the_other_root_is_refused(env: AgentEnv) -> None:
    """G8/R3: refused with a clear status before anything is touched."""
    env.agent().store.ensure()
    env.dispatch({"imagetype": "", "opstype": "rollback", "osversion": OLD, "maxunavailable": 1})
    env.run()
    st = env.status()
    assert st["phase"] == "failed" and "G8" in st["reason"] and "root B" in st["reason"]
    assert not env.node_obj()["spec"].get("unschedulable")
    assert grubenv.saved_entry(env.node) == "A"
    assert env.reboots.requests == []
    assert any(e["reason"] == "RollbackFailed" for e in env.api.list("events"))


def test_rollback_after_upgrade_returns_to_root_a(env: AgentEnv) -> None:
    """R3: the previous root comes back; nothing is fetched."""
    env.agent().store.ensure()
    env.dispatch(env.upgrade_spec())
    env.run()
    env.boot()
    env.run()
    fetched = len(env.images.requests)
    env.dispatch({"imagetype": "", "opstype": "rollback", "osversion": OLD, "maxunavailable": 1})
    env.run()
    assert grubenv.saved_entry(env.node) == "A"
    assert env.boot() == ("A", OLD)
    env.run()
    assert env.status()["phase"] == "done"
    assert env.status()["pinnedcurrent"] == "B"
    assert len(env.images.requests) == fetched


def test_config_failure_stays_in_config_then_recovers(env: AgentEnv) -> None:
    """C3/C5: a failing config leaves nodestatus config with the reason; settings before
    the failure stay; the admin's next version brings the node back to idle."""
    env.agent().store.ensure()
    persist = {
        "model": "kernel.sysctl.persist",
        "configpath": "/etc/persist.conf",
        "contents": [{"key": "user.max_user_namespaces", "value": "16384"}],
    }
    bad = {"model": "kernel.sysctl", "contents": [{"key": "net.ipv4.no_such_key", "value": "1"}]}
    base = {"imagetype": "", "opstype": "config", "osversion": OLD, "maxunavailable": 1}
    env.dispatch({**base, "sysconfigs": {"version": "2", "configs": [persist, bad]}})
    env.run()
    osi = env.osinstance()
    assert osi["spec"]["nodestatus"] == "config"
    assert osi["status"]["phase"] == "failed"
    assert "no_such_key" in osi["status"]["reason"] and "C5" in osi["status"]["reason"]
    assert osi["status"]["sysconfigs"]["version"] == ""
    assert "16384" in env.node.host_path("/etc/persist.conf").read_text()
    env.run()  # nothing happens again for the same dispatch
    assert env.status()["phase"] == "failed"

    env.dispatch({**base, "sysconfigs": {"version": "3", "configs": [persist]}})
    env.run()
    osi = env.osinstance()
    assert osi["spec"]["nodestatus"] == "idle"
    assert osi["status"]["phase"] == "done" and osi["status"]["sysconfigs"]["version"] == "3"


def test_config_for_another_version_is_refused(env: AgentEnv) -> None:
    """C1: the node does not run osversion, so nothing is configured."""
    env.agent().store.ensure()
    env.dispatch(
        {
            "imagetype": "",
            "opstype": "config",
            "osversion": NEW,
            "maxunavailable": 1,
            "sysconfigs": {
                "version": "2",
                "configs": [
                    {
                        "model": "kernel.sysctl",
                        "contents": [{"key": "kernel.pid_max", "value": "99999"}],
                    }
                ],
            },
        }
    )
    env.run()
    st = env.status()
    assert st["phase"] == "failed" and "C1" in st["reason"]
    assert (env.node.proc_sys / "kernel/pid_max").read_text().strip() == "32768"


def test_bad_checksum_refuses_the_image_and_keeps_the_boot_entry(env: AgentEnv) -> None:
    """D4: mismatch -> failed with the reason, uncordoned, grubenv unchanged, no reboot."""
    env.agent().store.ensure()
    env.dispatch(env.upgrade_spec(checksum="0" * 64))
    env.run()
    st = env.status()
    assert st["phase"] == "failed" and "D4" in st["reason"]
    assert grubenv.saved_entry(env.node) == "A"
    assert env.reboots.requests == []
    assert env.node_obj()["spec"]["unschedulable"] is False
    assert env.osinstance()["spec"]["nodestatus"] == "upgrade"
    assert NODE in {e["involvedObject"]["name"] for e in env.api.list("events")}


def test_grub_current_after_the_upgrade_still_means_the_dispatch_time_root(
    env: AgentEnv,
) -> None:
    """B3: sysconfigs applied after the reboot into B resolve grub.cmdline.current against
    A (current when dispatched) and grub.cmdline.next against B."""
    env.agent().store.ensure()
    env.dispatch(
        env.upgrade_spec(
            sysconfigs={
                "version": "g1",
                "configs": [
                    {
                        "model": "grub.cmdline.current",
                        "contents": [{"key": "kubeos_old", "value": "1"}],
                    },
                    {
                        "model": "grub.cmdline.next",
                        "contents": [{"key": "kubeos_new", "value": "1"}],
                    },
                ],
            }
        )
    )
    env.run()
    assert env.boot() == ("B", NEW)
    env.run()
    assert env.status()["phase"] == "done", env.status()
    cfg = env.node.grub_cfg.read_text()
    entry_a, entry_b = cfg.split("menuentry 'B'")
    linux_a = next(line for line in entry_a.splitlines() if line.strip().startswith("linux"))
    linux_b = next(line for line in entry_b.splitlines() if line.strip().startswith("linux"))
    assert "kubeos_old=1" in linux_a and "kubeos_old" not in linux_b
    assert "kubeos_new=1" in linux_b and "kubeos_new" not in linux_a


def test_api_errors_and_conflicts_during_the_upgrade_lose_nothing(env: AgentEnv) -> None:
    """G2: 503s on status writes are retried, a 409 (someone else wrote) is re-read; the
    upgrade still ends done with exactly one reboot."""
    env.agent().store.ensure()
    env.dispatch(env.upgrade_spec())
    env.api.inject_fault("update", "osinstances", 503, count=3, subresource="status")
    env.api.inject_fault("update", "osinstances", 409, count=2, subresource="status")
    env.run()
    assert env.status()["phase"] == "rebooting"
    env.boot()
    env.api.inject_fault("update", "osinstances", 503, count=2)  # the hand-back (spec)
    env.run()
    assert env.status()["phase"] == "done"
    assert env.osinstance()["spec"]["nodestatus"] == "idle"
    assert len(env.reboots.requests) == 1
    failed = [r for r in env.api.audit if r.resource == "osinstances" and r.verb == "update"]
    assert len(failed) >= 7


def test_site_extras_reach_the_image_plugin(env: AgentEnv) -> None:
    """`kubeos-agent run --extra K=V` settings arrive in every NodeContext the plugins see:
    image_disk reads its retry policy there, and a bad value fails the step by name."""
    env.agent().store.ensure()
    env.dispatch(env.upgrade_spec())
    env.run(env.agent(extras={"image_disk.attempts": "many"}))
    st = env.status()
    assert st["phase"] == "failed" and "image_disk.*" in st["reason"]
    assert grubenv.saved_entry(env.node) == "A"
