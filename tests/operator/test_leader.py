"""One active replica (Lease in coordination.k8s.io/v1), takeover, and a clean SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from kubeos.kube.leader import LeaderElector
from kubeos.sim.apiserver import ApiServer
from tests.operator import fakeagent
from tests.operator.cluster import seed, wait_busy, wait_events

pytestmark = pytest.mark.timeout(60)


def holder(api: ApiServer) -> str | None:
    try:
        return api.get("leases", "kubeos-operator")["spec"].get("holderIdentity")
    except Exception:
        return None


def wait_holder(api: ApiServer, pred, timeout: float = 10.0) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = holder(api)
        if pred(h):
            return h
        time.sleep(0.05)
    raise AssertionError(f"lease holder is still {holder(api)!r}")


def test_only_the_leader_dispatches_and_a_standby_takes_over(api, start_operator):
    seed(api, 4, maxunavailable=1, timeinterval=0)
    a = start_operator("op-a")
    wait_holder(api, lambda h: h == "op-a")
    b = start_operator("op-b")
    [first] = wait_busy(api, 1)
    time.sleep(0.6)  # b has had several election periods
    assert holder(api) == "op-a" and not b.operator.is_leader()
    assert {e["source"]["host"] for e in wait_events(api, "Dispatched")} == {"op-a"}

    a.stop()  # releases the lease: b takes over without waiting for it to expire
    assert holder(api) in (None, "", "op-b")
    wait_holder(api, lambda h: h == "op-b", timeout=3.0)
    fakeagent.finish(api, first)
    [second] = wait_busy(api, 1)
    assert second != first
    hosts = [e["source"]["host"] for e in wait_events(api, "Dispatched", 2)]
    assert hosts == ["op-a", "op-b"]  # one dispatch each, none duplicated
    lease = api.get("leases", "kubeos-operator")["spec"]
    assert lease["leaseTransitions"] >= 1


def test_a_crashed_leader_is_replaced_after_the_lease_expires(api):
    """No release (the process died): the standby waits lease_duration by its own clock."""
    crashed = LeaderElector(api.api_client(), "default", "lk", "dead", lease_duration=1.0,
                            renew_deadline=0.5, retry_period=0.1)
    assert crashed.try_acquire_or_renew()
    standby = LeaderElector(api.api_client(), "default", "lk", "live", lease_duration=1.0,
                            renew_deadline=0.5, retry_period=0.1)
    assert not standby.try_acquire_or_renew()
    started = time.monotonic()
    while not standby.try_acquire_or_renew():
        time.sleep(0.1)
        assert time.monotonic() - started < 5
    assert time.monotonic() - started >= 0.9
    assert api.get("leases", "lk", "default")["spec"]["holderIdentity"] == "live"


def test_leader_steps_down_when_it_cannot_renew(api):
    elector = LeaderElector(api.api_client(), "default", "lk", "me", lease_duration=1.0,
                            renew_deadline=0.5, retry_period=0.1)
    stop = threading.Event()
    t = threading.Thread(target=elector.run, args=(stop,), daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while not elector.is_leader():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    api.inject_fault("*", "leases", 503, count=1000)
    time.sleep(0.7)
    assert not elector.is_leader()  # renew_deadline passed without a renewal
    api.clear_faults()
    deadline = time.monotonic() + 5
    while not elector.is_leader():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    stop.set()
    t.join(5)
    assert api.get("leases", "lk", "default")["spec"].get("holderIdentity") in (None, "")


@pytest.mark.parametrize("how", ["--server", "--kubeconfig"])
def test_cli_runs_until_sigterm_and_releases_the_lease(api, tmp_path, how):
    seed(api, 1, maxunavailable=1, timeinterval=0)
    exe = os.path.join(os.path.dirname(sys.executable), "kubeos-operator")
    target = api.url if how == "--server" else str(api.write_kubeconfig(tmp_path / "kubeconfig"))
    proc = subprocess.Popen(
        [exe, "run", how, target, "--namespace", "default", "--identity", "cli-op"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_holder(api, lambda h: h == "cli-op", timeout=20)
        wait_busy(api, 1, timeout=10)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert holder(api) in (None, "")
    assert "released lease" in out
    agents = {r.user_agent for r in api.audit if r.resource in ("leases", "osinstances")}
    assert agents == {"kubeos-operator/0.1.0"}


def test_a_stalled_work_loop_hands_the_lease_over(api):
    stalled = threading.Event()
    elector = LeaderElector(api.api_client(), "default", "lk", "me", lease_duration=1.0,
                            renew_deadline=0.5, retry_period=0.1,
                            healthy=lambda: not stalled.is_set())
    stop = threading.Event()
    t = threading.Thread(target=elector.run, args=(stop,), daemon=True)
    t.start()
    try:
        until = time.monotonic() + 5
        while not elector.is_leader():
            assert time.monotonic() < until
            time.sleep(0.05)
        stalled.set()
        time.sleep(0.4)
        assert not elector.is_leader()
        assert api.get("leases", "lk", "default")["spec"].get("holderIdentity") in (None, "")
        other = LeaderElector(api.api_client(), "default", "lk", "other", lease_duration=1.0,
                              renew_deadline=0.5, retry_period=0.1)
        assert other.try_acquire_or_renew()  # released: no need to wait for expiry
    finally:
        stop.set()
        t.join(5)

