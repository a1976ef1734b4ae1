"""A reboot that fails or never happens undoes the boot switch (G4, G8).

The agent reports such a node failed and uncordons it; its next unplanned reboot must
then start the pinned (dispatch-time) root, not the upgrade's (or rollback's) target.
Real agent against the API stand-in on a real disk-image node; only the reboot hook is a
test plugin, registered after the recorder so it wins (firstresult).
"""

from __future__ import annotations

from kubeos.agent import localstate
from kubeos.contracts import NodeContext, Partition
from kubeos.hooks import hookimpl
from kubeos.node import grubenv
from tests.agent.conftest import NEW, OLD, AgentEnv


class RefusingReboot:
    """A reboot hook that cannot reboot (init unreachable): returns False."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def kubeos_reboot(self, node: NodeContext, reason: str) -> bool:
        self.calls += 1
        return False


class CrashingReboot:
    """A reboot hook with a bug: raises."""

    @hookimpl
    def kubeos_reboot(self, node: NodeContext, reason: str) -> bool:
        raise RuntimeError("dbus connection refused")


class BrokenSwitch:
    """A boot-switch hook that fails, registered only after the upgrade switched the boot."""

    @hookimpl
    def kubeos_switch_boot(self, target: Partition, node: NodeContext) -> str:
        raise OSError("grubenv is read-only")


def _assert_failed_and_undone(env: AgentEnv, pinned: str, words: str) -> None:
    st = env.status()
    assert st["phase"] == "failed", st
    assert words in st["reason"] and f"pinned root {pinned} again" in st["reason"], st["reason"]
    assert grubenv.saved_entry(env.node) == pinned
    assert localstate.load(env.node) is None
    assert env.node_obj()["spec"]["unschedulable"] is False
    assert env.osinstance()["spec"]["nodestatus"] != "idle"  # C5: left as it was


def test_reboot_hook_refusing_switches_back_to_the_pinned_root(env: AgentEnv) -> None:
    refusing = RefusingReboot()
    env.host.register(refusing, name="refusing_reboot")
    env.agent().store.ensure()
    env.dispatch(env.upgrade_spec())
    env.run()
    assert refusing.calls == 1
    _assert_failed_and_undone(env, "A", "no reboot hook requested a reboot")
    assert env.boot() == ("A", OLD)  # the next unplanned reboot keeps the old OS


def test_reboot_hook_raising_switches_back_to_the_pinned_root(env: AgentEnv) -> None:
    env.host.register(CrashingReboot(), name="crashing_reboot")
    env.agent().store.ensure()
    env.dispatch(env.upgrade_spec())
    env.run()
    _assert_failed_and_undone(env, "A", "RuntimeError: dbus connection refused")
    assert any(e["reason"] == "UpgradeFailed" for e in env.api.list("events"))


def test_machine_that_never_reboots_switches_back_after_the_last_request(env: AgentEnv) -> None:
    """The hook accepts every request but the machine stays up (same boot id)."""
    env.agent().store.ensure()
    env.dispatch(env.upgrade_spec())
    for _ in range(3):
        env.run()
        assert grubenv.saved_entry(env.node) == "B"  # still waiting for the reboot
    assert len(env.reboots.requests) == 3
    env.run()
    _assert_failed_and_undone(env, "A", "did not restart after 3 reboot requests")
    assert env.boot() == ("A", OLD)


def test_rollback_whose_reboot_fails_keeps_booting_the_pinned_root(env: AgentEnv) -> None:
    """For a rollback the pinned root is the newer one (B): the node must not fall back."""
    env.agent().store.ensure()
    env.dispatch(env.upgrade_spec())
    env.run()
    assert env.boot() == ("B", NEW)
    env.run()
    assert env.status()["phase"] == "done"
    env.host.register(RefusingReboot(), name="refusing_reboot")
    env.dispatch({"imagetype": "", "opstype": "rollback", "osversion": OLD, "maxunavailable": 1})
    env.run()
    _assert_failed_and_undone(env, "B", "no reboot hook requested a reboot")
    assert env.boot() == ("B", NEW)


def test_failed_switch_back_is_named_in_the_reason(env: AgentEnv) -> None:
    """The switch-back itself fails: the reason says the next boot starts the new root."""
    env.agent().store.ensure()
    env.dispatch(env.upgrade_spec())
    env.run()  # upgrade staged on B, one reboot requested, machine stays up
    env.host.register(BrokenSwitch(), name="broken_switch")
    env.host.register(RefusingReboot(), name="refusing_reboot")
    env.run()  # the second request fails
    st = env.status()
    assert st["phase"] == "failed"
    assert "pointing the next boot back at the pinned root failed" in st["reason"]
    assert "grubenv is read-only" in st["reason"]
    assert "next boot would start the upgrade target root" in st["reason"]
    assert grubenv.saved_entry(env.node) == "B"
    record = localstate.load(env.node)  # the switch it records is still in effect
    assert record is not None and record.attempts == 2
    assert env.node_obj()["spec"]["unschedulable"] is False
