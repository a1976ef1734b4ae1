"""A reboot the status never recorded must not make the agent redo its step (R3, G8, U6).

The boot switch is done, then recording `rebooting` fails (the API refuses the write) and
the agent dies; the node reboots anyway into the switched root. A fresh agent still reads
phase `installing`/`fetching`. It must check the boot and finish - not fetch, overwrite the
root it left (the rollback target) or switch back. Real agent code, real disk image, real
grub-editenv and the API stand-in over HTTP; only the reboot itself is simulated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator

import pytest
from kubernetes.client.exceptions import ApiException

from kubeos.agent import localstate
from kubeos.agent.osinstance import Work
from kubeos.contracts import NodeContext, Partition
from kubeos.hooks import hookimpl
from kubeos.node import grubenv
from kubeos.node.layout import find_layout
from kubeos.sim.apiserver import ApiServer
from kubeos.sim.apiserver.audit import Fault
from tests.agent.conftest import NEW, OLD, AgentEnv

ROLLBACK = {"imagetype": "", "opstype": "rollback", "osversion": OLD, "maxunavailable": 1}


class StatusWriteFailsAfterSwitch:
    """Once the boot entry is switched, the next OSInstance status write is refused."""

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        self.switches: list[str] = []

    @hookimpl(wrapper=True)
    def kubeos_switch_boot(
        self, target: Partition, node: NodeContext
    ) -> Generator[None, str | None, str | None]:
        result = yield
        self.switches.append(target.label)
        self.api.inject_fault(
            "update", "osinstances", 403, subresource="status", message="API unavailable"
        )
        return result


def _digest(part: Partition) -> str:
    with open(part.path, "rb") as f:
        f.seek(part.offset)
        return hashlib.sha256(f.read(part.size)).hexdigest()


def _root_digest(env: AgentEnv, label: str) -> str:
    return _digest(find_layout(env.node).partition(label))


def _switch_then_die(env: AgentEnv, spec: dict[str, object]) -> StatusWriteFailsAfterSwitch:
    faults = StatusWriteFailsAfterSwitch(env.api)
    env.host.register(faults, name="status_fault_after_switch")
    env.dispatch(spec)
    with pytest.raises(ApiException):
        env.run()
    env.host.unregister(name="status_fault_after_switch")
    return faults


def _upgraded(env: AgentEnv) -> None:
    env.agent().store.ensure()
    env.dispatch(env.upgrade_spec())
    env.run()
    assert env.boot() == ("B", NEW)
    env.run()
    assert env.status()["phase"] == "done"


@pytest.mark.parametrize("local_record", [True, False], ids=["record", "no-record"])
def test_upgrade_switched_then_rebooted_unrecorded_finishes_once(
    env: AgentEnv, local_record: bool
) -> None:
    """U6: the fresh agent checks the boot and finishes; root A (the rollback target) keeps
    its bytes, nothing is fetched again, one reboot. Without the local record (killed
    between switch and record) the running root alone tells that the reboot happened."""
    env.agent().store.ensure()
    old_root = _root_digest(env, "A")
    faults = _switch_then_die(env, env.upgrade_spec())
    assert faults.switches == ["B"]
    assert env.status()["phase"] == "installing"
    assert len(env.reboots.requests) == 0  # the agent died before asking
    if not local_record:
        env.node.host_path(localstate.STATE_PATH).unlink()
    fetched, new_root = len(env.images.requests), _root_digest(env, "B")

    assert env.boot() == ("B", NEW)  # the node rebooted anyway (power cut, admin, ...)
    env.run()
    osi = env.osinstance()
    assert osi["status"]["phase"] == "done", osi["status"]
    assert osi["status"]["pinnedcurrent"] == "A"
    assert osi["spec"]["nodestatus"] == "idle"
    assert env.reboots.requests == []
    assert len(env.images.requests) == fetched
    assert _root_digest(env, "A") == old_root
    assert _root_digest(env, "B") == new_root
    assert grubenv.saved_entry(env.node) == "B"
    assert not env.node_obj()["spec"].get("unschedulable")


def test_upgrade_switched_but_not_rebooted_requests_the_reboot_only(env: AgentEnv) -> None:
    """Same boot id as recorded after the switch: reboot again, do not rewrite root B."""
    env.agent().store.ensure()
    _switch_then_die(env, env.upgrade_spec())
    fetched, new_root = len(env.images.requests), _root_digest(env, "B")
    env.run()
    assert env.status()["phase"] == "rebooting"
    assert len(env.reboots.requests) == 1
    assert len(env.images.requests) == fetched
    assert _root_digest(env, "B") == new_root
    assert env.boot() == ("B", NEW)
    env.run()
    assert env.status()["phase"] == "done"
    assert len(env.reboots.requests) == 1


def test_rollback_switched_then_rebooted_unrecorded_does_not_switch_back(env: AgentEnv) -> None:
    """R3/G8: after the rollback's unrecorded reboot into A the fresh agent finishes on A;
    it does not switch back to B, and root B is left as it was."""
    _upgraded(env)
    reboots = len(env.reboots.requests)
    roots = _root_digest(env, "A"), _root_digest(env, "B")
    faults = _switch_then_die(env, ROLLBACK)
    assert faults.switches == ["A"]
    assert env.status()["phase"] == "fetching"

    assert env.boot() == ("A", OLD)
    env.run()
    st = env.status()
    assert (st["phase"], st["pinnedcurrent"]) == ("done", "B"), st
    assert env.osinstance()["spec"]["nodestatus"] == "idle"
    assert grubenv.saved_entry(env.node) == "A"
    assert len(env.reboots.requests) == reboots
    assert (_root_digest(env, "A"), _root_digest(env, "B")) == roots


def test_rollback_to_a_version_the_other_root_does_not_hold_is_refused(env: AgentEnv) -> None:
    """G8: the rollback passes the requested version down; nothing is switched."""
    _upgraded(env)
    env.dispatch({**ROLLBACK, "osversion": "KubeOS 0.9.0"})
    env.run()
    st = env.status()
    assert st["phase"] == "failed" and "G8" in st["reason"], st
    assert grubenv.saved_entry(env.node) == "B"


class StatusWriteFailsDuringInstall:
    """From verification on, the next OSInstance status write (`installing`) is refused."""

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        self.fault: Fault | None = None

    @hookimpl(wrapper=True)
    def kubeos_verify_image(
        self, spec: object, image: object, node: NodeContext
    ) -> Generator[None, object, object]:
        if self.fault is None:
            self.fault = self.api.inject_fault(
                "update", "osinstances", 403, subresource="status", message="API unavailable"
            )
        return (yield)


def test_failed_installing_record_does_not_abort_the_install(env: AgentEnv) -> None:
    """G2: the progress callback's status write fails inside the block I/O; the install
    goes on, the boot is switched and the reboot requested (the record is best-effort)."""
    env.agent().store.ensure()
    faults = StatusWriteFailsDuringInstall(env.api)
    env.host.register(faults, name="status_fault_during_install")
    env.dispatch(env.upgrade_spec())
    env.run()
    assert faults.fault is not None and faults.fault.remaining == 0  # the write was refused
    st = env.status()
    assert st["phase"] == "rebooting", st
    assert grubenv.saved_entry(env.node) == "B"
    assert len(env.reboots.requests) == 1
    assert env.boot() == ("B", NEW)
    env.run()
    assert env.status()["phase"] == "done"


def test_installing_reporter_logs_a_refused_write_instead_of_raising(env: AgentEnv) -> None:
    """G2 on the agent's side alone: the callback itself never raises into the I/O loop."""
    agent = env.agent()
    agent.store.ensure()
    env.dispatch(env.upgrade_spec())
    obj = agent.store.ensure()
    fault = env.api.inject_fault("get", "osinstances", 403, message="API unavailable")
    report = agent._installing_reporter(obj, Work.of(obj))
    report("write", 4096, 8 * 2**20)  # must not raise
    assert fault.remaining == 0
    assert env.status().get("phase", "") == ""
