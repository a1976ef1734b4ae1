"""The operator against the real-HTTP API stand-in, with a minimal fake agent in the test.

Covers batches (E1/E2), N5 refusal + Event, failures keeping their slot, 409/5xx
tolerance without duplicate dispatches (G2), and the user agent on every call.
"""

from __future__ import annotations

import time

import pytest

from kubeos.operator.service import USER_AGENT
from tests.operator import fakeagent
from tests.operator.builders import NEW, os_obj
from tests.operator.cluster import events, seed, settle, wait_busy, wait_events, wait_os

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("mode", ["parallel", "serial"])
def test_rollout_in_batches_of_maxunavailable(api, start_operator, mode):
    seed(api, 5, maxunavailable=2, executionmode=mode, timeinterval=0)
    start_operator()
    limit = 1 if mode == "serial" else 2  # E2: inside a serial batch one node at a time
    finished: list[str] = []
    while len(finished) < 5:
        now_busy = wait_busy(api, min(limit, 5 - len(finished)))
        settle()
        assert fakeagent.busy(api) == now_busy, "more nodes dispatched than allowed"
        for name in now_busy:
            fakeagent.finish(api, name)
            finished.append(name)
    st = wait_os(api, lambda s: s.get("phase") == "Completed")
    assert st["nodes"] == {"total": 5, "done": 5, "inProgress": 0, "failed": 0, "pending": 0}
    assert st["observedGeneration"] == 1
    assert sorted(finished) == ["n1", "n2", "n3", "n4", "n5"]  # cp (control plane) untouched
    assert "cp" not in {o["metadata"]["name"] for o in api.list("osinstances", "default")}
    dispatched = [e["message"].split(":")[0] for e in events(api, "Dispatched")]
    assert sorted(dispatched) == [f"node n{i}" for i in range(1, 6)]  # once each
    assert len(wait_events(api, "Completed")) == 1
    spec = api.get("osinstances", "n1")["spec"]
    assert spec["osversion"] == NEW and spec["osref"] == {"namespace": "default", "name": "os-a"}
    assert spec["dispatch"] == f"{api.get('os', 'os-a')['metadata']['uid']}:1"


def test_operator_works_from_caches_not_a_list_per_decision(api, start_operator):
    seed(api, 4, maxunavailable=4, timeinterval=0)
    running = start_operator()
    names = wait_busy(api, 4)
    for name in names:
        fakeagent.finish(api, name)
    wait_os(api, lambda s: s.get("phase") == "Completed")
    ops = [r for r in api.audit if r.user_agent == USER_AGENT]
    assert ops, "the operator's calls carry its user agent"
    assert {r.user_agent for r in api.audit if r.resource in ("leases", "os")} == {USER_AGENT}
    lists = [r for r in ops if r.verb == "list"]
    assert sorted(r.resource for r in lists) == ["nodes", "os", "osinstances"]  # one each
    writes = [r for r in ops if r.verb in ("create", "update", "patch") and r.resource != "leases"]
    assert len(writes) > len(lists) and running.operator.controller.rounds >= 2
    assert {r.resource for r in ops if r.verb == "watch"} == {"os", "nodes", "osinstances"}


def test_agent_created_osinstances_are_updated_not_recreated(api, start_operator):
    seed(api, 2, maxunavailable=2, timeinterval=0)
    for name in ("n1", "n2"):
        fakeagent.register(api, name)
    start_operator()
    wait_busy(api, 2)
    ops = [r for r in api.audit if r.user_agent == USER_AGENT and r.resource == "osinstances"]
    assert {r.verb for r in ops} >= {"update"} and "create" not in {r.verb for r in ops}


def test_n5_violating_os_is_refused_with_status_and_event(api, start_operator):
    seed(api, 2, maxunavailable=1, timeinterval=0)
    time.sleep(1.1)  # creationTimestamp has second resolution: os-b is strictly newer
    second = os_obj("os-b", timeinterval=0)
    for key in ("uid", "generation", "creationTimestamp", "resourceVersion"):
        second["metadata"].pop(key)
    api.create("os", second)
    start_operator()
    st = wait_os(api, lambda s: s.get("phase") == "Refused", name="os-b")
    assert "[N5]" in st["message"] and "os-a" in st["message"]
    accepted = next(c for c in st["conditions"] if c["type"] == "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "NodeSelectorConflict")
    wait_busy(api, 1)
    settle()
    refused = wait_events(api, "Refused")
    assert len(refused) == 1 and refused[0]["involvedObject"]["name"] == "os-b"
    assert refused[0]["type"] == "Warning"
    b_uid = api.get("os", "os-b")["metadata"]["uid"]
    assert not [o for o in api.list("osinstances", "default")
                if o["spec"].get("dispatch", "").startswith(b_uid)]


def test_failed_node_keeps_its_slot_and_is_reported(api, start_operator):
    seed(api, 3, maxunavailable=1, timeinterval=0)
    start_operator()
    [first] = wait_busy(api, 1)
    fakeagent.fail(api, first, "checksum mismatch [D4]")
    st = wait_os(api, lambda s: s.get("phase") == "Failed")
    assert st["failedNodes"] == [first] and st["nodes"]["failed"] == 1
    settle()
    assert fakeagent.busy(api) == []  # the bad image does not spread
    [failed_event] = wait_events(api, "NodeFailed")
    assert "checksum mismatch" in failed_event["message"] and failed_event["type"] == "Warning"
    # a new generation is a new dispatch: the failed node may go again
    api.patch("os", "os-a", {"spec": {"checksum": "b" * 64}})
    assert wait_busy(api, 1) == [first]
    assert api.get("osinstances", first)["spec"]["dispatch"].endswith(":2")


def test_conflicts_and_server_errors_neither_lose_nor_duplicate_dispatches(api, start_operator):
    seed(api, 4, maxunavailable=2, timeinterval=0)
    for name in ("n1", "n2", "n3", "n4"):
        fakeagent.register(api, name)
    api.inject_fault("update", "osinstances", 409, count=3)
    api.inject_fault("update", "osinstances", 503, count=2)
    api.inject_fault("patch", "os", 500, count=2, subresource="status")
    api.inject_fault("create", "events", 500, count=1)
    start_operator()
    first = wait_busy(api, 2)
    # the agent writes status meanwhile (a new resourceVersion: the operator's copy is stale)
    for name in ("n3", "n4"):
        api.patch("osinstances", name, {"status": {"phase": ""}}, status=True)
    for name in first:
        fakeagent.finish(api, name)
    second = wait_busy(api, 2)
    assert set(second) == {"n1", "n2", "n3", "n4"} - set(first)
    for name in second:
        fakeagent.finish(api, name)
    wait_os(api, lambda s: s.get("phase") == "Completed")
    updates = [r for r in api.audit
               if r.user_agent == USER_AGENT and r.resource == "osinstances" and r.verb == "update"]
    assert len(updates) >= 4 + 3  # 3 refused with 409 and re-decided
    assert sorted(e["message"].split(":")[0] for e in wait_events(api, "Dispatched", 4)) == [
        f"node n{i}" for i in range(1, 5)
    ]


def test_deleted_os_stops_dispatching(api, start_operator):
    seed(api, 3, maxunavailable=1, timeinterval=0)
    start_operator()
    [first] = wait_busy(api, 1)
    api.delete("os", "os-a")
    settle()
    fakeagent.finish(api, first)
    settle()
    assert fakeagent.busy(api) == []


def test_w4_nothing_before_the_window_opens_then_the_controller_wakes_up(api, start_operator):
    from datetime import UTC, datetime, timedelta

    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    window = {"starttime": opens.strftime("%H:%M:%S"),
              "endtime": (opens + timedelta(hours=1)).strftime("%H:%M:%S")}
    seed(api, 2, maxunavailable=2, timeinterval=0, timewindow=window)
    start_operator(resync=30.0)  # only the planned wake-up can start it in time
    st = wait_os(api, lambda s: s.get("phase") == "Waiting")
    assert "[W4]" in st["message"]
    assert fakeagent.busy(api) == []
    assert wait_busy(api, 2, timeout=6) == ["n1", "n2"]
    assert datetime.now(UTC) >= opens


def test_i3_timeinterval_spaces_parallel_batches(api, start_operator):
    seed(api, 2, maxunavailable=1, timeinterval=1)
    start_operator()
    [first] = wait_busy(api, 1)
    dispatched_at = time.monotonic()
    fakeagent.finish(api, first)
    [second] = wait_busy(api, 1)
    assert second != first and time.monotonic() - dispatched_at >= 0.8
