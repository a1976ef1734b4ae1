"""The planner, exhaustively, without a cluster (os-cr.md N, W, I, E, O; U1, C1, C2, R3)."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest

from kubeos.operator.planner import (
    PHASE_COMPLETED,
    PHASE_FAILED,
    PHASE_PROGRESSING,
    PHASE_REFUSED,
    PHASE_WAITING,
    SERIAL_NODE_GAP,
    OSPlan,
    Snapshot,
    dispatch_spec,
    plan,
)
from tests.operator.builders import NEW, OLD, T0, UNSET, node, os_obj, osi, workers

D = "uid-os-a:1"  # dispatch id of os_obj() with defaults


def one(os_objects: list[dict[str, Any]], nodes, instances=(), now=T0, **kw) -> OSPlan:
    result = plan(Snapshot(os_objects, nodes, list(instances), now, tz=UTC, **kw))
    assert len(result.per_os) == len(os_objects)
    return next(p for p in result.per_os if p.name == os_objects[0]["metadata"]["name"])


def dispatched(p: OSPlan) -> list[str]:
    return [d.node for d in p.decisions if d.kind == "dispatch"]


def cond(p: OSPlan, ctype: str) -> dict[str, Any]:
    return next(c for c in p.status["conditions"] if c["type"] == ctype)


# --- N1-N4: node selection -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("nodeselector", "label", "selected"),
    [
        (UNSET, UNSET, True),  # N2 unset: nodes without the label key
        (UNSET, "", False),
        (UNSET, "gpu", False),
        ("no-label", UNSET, True),  # N2
        ("no-label", "", False),
        ("no-label", "gpu", False),
        ("", UNSET, False),  # N3 "": label value ""
        ("", "", True),
        ("", "gpu", False),
        ("gpu", "gpu", True),
        ("gpu", "cpu", False),
        ("gpu", UNSET, False),
        ("all-label", UNSET, True),  # N4
        ("all-label", "", True),
        ("all-label", "gpu", True),
    ],
)
def test_n1_to_n4_node_selector(nodeselector, label, selected):
    p = one([os_obj(nodeselector=nodeselector)], [node("n1", selector=label)])
    assert dispatched(p) == (["n1"] if selected else [])
    assert p.status["nodes"]["total"] == (1 if selected else 0)


@pytest.mark.parametrize("role", ["control-plane", "master"])
@pytest.mark.parametrize("nodeselector", [UNSET, "all-label"])
def test_n1_control_plane_nodes_are_never_handled(role, nodeselector):
    nodes = [node("cp", role=role), node("w1")]
    p = one([os_obj(nodeselector=nodeselector, maxunavailable=5)], nodes)
    assert dispatched(p) == ["w1"]


# --- N5: uniqueness ------------------------------------------------------------------------
def two(sel_a: Any, sel_b: Any, nodes: list[dict[str, Any]]) -> tuple[OSPlan, OSPlan]:
    older = os_obj("os-a", nodeselector=sel_a, created="2026-11-25T09:00:00Z")
    newer = os_obj("os-b", nodeselector=sel_b, created="2026-11-25T10:00:00Z")
    result = plan(Snapshot([newer, older], nodes, [], T0, tz=UTC))
    by = {p.name: p for p in result.per_os}
    return by["os-a"], by["os-b"]


@pytest.mark.parametrize(
    ("sel_a", "sel_b", "nodes", "b_refused"),
    [
        (UNSET, UNSET, [node("n1")], True),  # only one OS may leave it unset
        (UNSET, "no-label", [node("n1")], True),  # unset and no-label are one class
        ("gpu", "gpu", [node("n1", selector="gpu")], True),
        ("", "", [node("n1", selector="")], True),
        (UNSET, "", [node("n1"), node("n2", selector="")], False),
        ("gpu", "cpu", [node("n1", selector="gpu"), node("n2", selector="cpu")], False),
        # all-label must be the only effective OS
        ("all-label", "gpu", [node("n1", selector="gpu")], True),
        ("gpu", "all-label", [node("n1", selector="gpu")], True),
        # ... an OS without matching nodes is not effective: no conflict
        ("all-label", "gpu", [node("n1")], False),
        ("gpu", "all-label", [node("n1")], False),
        ("all-label", "all-label", [node("n1")], True),
    ],
)
def test_n5_the_newer_violating_os_is_refused(sel_a, sel_b, nodes, b_refused):
    a, b = two(sel_a, sel_b, nodes)
    assert a.status["phase"] != PHASE_REFUSED
    assert (b.status["phase"] == PHASE_REFUSED) is b_refused
    if b_refused:
        assert b.decisions == ()
        assert cond(b, "Accepted")["status"] == "False"
        assert cond(b, "Accepted")["reason"] == "NodeSelectorConflict"
        assert "[N5]" in b.status["message"] and "os-a" in b.status["message"]
        assert [(n.type, n.reason) for n in b.notes] == [("Warning", "Refused")]


def test_n5_refusal_event_is_posted_once_then_recovery_is_announced():
    older = os_obj("os-a", created="2026-11-25T09:00:00Z")
    newer = os_obj("os-b", created="2026-11-25T10:00:00Z", uid="uid-b")
    first = plan(Snapshot([older, newer], [node("n1")], [], T0, tz=UTC)).per_os[1]
    assert first.notes and first.notes[0].reason == "Refused"
    newer["status"] = dict(first.status)
    again = plan(Snapshot([older, newer], [node("n1")], [], T0, tz=UTC)).per_os[1]
    assert again.notes == ()
    assert again.status == first.status  # nothing changes: nothing to write
    alone = plan(Snapshot([newer], [node("n1")], [], T0, tz=UTC)).per_os[0]
    assert ("Normal", "Accepted") in [(n.type, n.reason) for n in alone.notes]
    assert dispatched(alone) == ["n1"]


def test_invalid_os_is_refused_with_the_rule_and_dispatches_nothing():
    bad = os_obj(maxunavailable=0)
    p = one([bad], [node("n1")])
    assert p.status["phase"] == PHASE_REFUSED and p.decisions == ()
    assert cond(p, "Accepted")["reason"] == "Invalid"
    assert "spec.maxunavailable" in p.status["message"]


def test_invalid_os_does_not_block_a_valid_one():
    bad = os_obj("os-bad", maxunavailable=0, created="2026-11-25T08:00:00Z")
    good = os_obj("os-a")
    result = {p.name: p for p in plan(Snapshot([bad, good], [node("n1")], [], T0, tz=UTC)).per_os}
    assert dispatched(result["os-a"]) == ["n1"]


# --- U1 / R3 / C1 / C2: which nodes need work ----------------------------------------------
def test_u1_upgrade_skips_nodes_already_at_osversion():
    nodes = [node("n1", version=NEW), node("n2"), node("n3")]
    p = one([os_obj(maxunavailable=5)], nodes)
    assert dispatched(p) == ["n2", "n3"]
    assert p.status["nodes"] == {"total": 3, "done": 1, "inProgress": 2, "failed": 0, "pending": 0}


def test_r3_rollback_targets_nodes_not_at_the_previous_version():
    nodes = [node("n1", version=NEW), node("n2", version=OLD)]
    p = one([os_obj(opstype="rollback", osversion=OLD)], nodes)
    assert dispatched(p) == ["n1"]
    assert p.decisions[0].spec["nodestatus"] == "rollback"


def cfg(version: str = "2") -> dict[str, Any]:
    return {"version": version, "configs": [{"model": "kernel.sysctl",
                                             "contents": [{"key": "vm.swappiness", "value": 10}]}]}


def test_c1_config_only_where_the_node_runs_osversion():
    nodes = [node("n1", version=OLD), node("n2", version=NEW)]
    p = one([os_obj(opstype="config", osversion=OLD, sysconfigs=cfg(), maxunavailable=5)], nodes)
    assert dispatched(p) == ["n1"]
    assert p.status["nodes"]["total"] == 1  # n2 is not eligible, not counted


@pytest.mark.parametrize(
    ("sysversion", "upversion", "want_sys", "want_up", "needs"),
    [
        ("2", "", "2", None, False),
        ("1", "", "2", None, True),
        (None, None, "2", None, True),
        ("2", "1", "2", "1", False),
        ("2", "0", "2", "1", False),  # config applies sysconfigs only; upgradeconfigs: U3
        ("1", "0", "2", "1", True),
        ("2", None, None, None, True),  # removed sysconfigs: "" != "2" clears it (C2)
        (None, None, None, None, False),  # "" == "" (a node never configured)
        ("", "", "", None, False),
    ],
)
def test_c2_config_triggered_by_version_inequality(sysversion, upversion, want_sys, want_up,
                                                   needs):
    obj = os_obj(
        opstype="config",
        osversion=OLD,
        sysconfigs=cfg(want_sys) if want_sys is not None else None,
        upgradeconfigs=cfg(want_up) if want_up is not None else None,
    )
    if want_sys is None:  # validate_spec requires sysconfigs for config: send it empty
        obj["spec"]["sysconfigs"] = {"version": "", "configs": []}
    inst = osi("n1", sysversion=sysversion, upversion=upversion)
    p = one([obj], [node("n1")], [inst])
    assert dispatched(p) == (["n1"] if needs else [])
    if needs:
        spec = p.decisions[0].spec
        assert spec["sysconfigs"]["version"] == (want_sys or "")
        assert spec["upgradeconfigs"]["version"] == (want_up or "")


def test_dispatch_spec_carries_everything_the_agent_needs():
    obj = os_obj(sysconfigs=cfg("3"))
    spec = dispatch_spec(obj, __import__("kubeos.models.os", fromlist=["x"]).validate_spec(
        obj["spec"])[0])
    assert spec["nodestatus"] == "upgrade"
    assert spec["dispatch"] == D
    assert spec["osref"] == {"namespace": "default", "name": "os-a"}
    assert spec["osversion"] == NEW
    assert spec["upgrade"]["imageurl"] == "https://images.test/kubeos.img"
    assert spec["upgrade"]["checksum"] == "a" * 64
    assert set(spec["upgrade"]) >= {"imagetype", "flagSafe", "mtls", "cacert", "evictpodforce"}
    assert spec["sysconfigs"]["configs"][0]["contents"] == [{"key": "vm.swappiness",
                                                             "value": "10"}]
    assert spec["upgradeconfigs"] == {"version": "", "configs": []}


def test_a_missing_osinstance_is_dispatched_by_creating_it():
    p = one([os_obj()], [node("n1"), node("n2")], [osi("n2")])
    by = {d.node: d for d in p.decisions}
    assert by["n1"].osinstance is None
    assert by["n2"].osinstance is not None  # conditional on its resourceVersion


# --- batches (E1, I3) and failures ----------------------------------------------------------
@pytest.mark.parametrize(("maxun", "busy"), [(2, 0), (2, 1), (2, 2), (3, 1), (10, 0), (10, 4)])
def test_e1_batches_count_nodes_already_in_progress(maxun, busy):
    instances = [osi(f"n{i}", nodestatus="upgrade", dispatch=D) for i in range(1, busy + 1)]
    p = one([os_obj(maxunavailable=maxun)], workers(6), instances)
    assert dispatched(p) == [f"n{i}" for i in range(busy + 1, 7)][: max(0, maxun - busy)]
    assert p.status["nodes"]["inProgress"] == min(maxun, 6)


def test_nodes_busy_for_another_dispatch_take_slots_too():
    instances = [osi("n1", nodestatus="config", dispatch="other-uid:4")]
    p = one([os_obj(maxunavailable=2)], workers(4), instances)
    assert dispatched(p) == ["n2"]


@pytest.mark.parametrize(
    ("interval", "ago", "expect_dispatch", "wake"),
    [(15, 5, False, 10.0), (15, 15, True, None), (15, None, True, None), (0, 0, True, None),
     (60, 59.5, False, 0.5)],
)
def test_i1_i3_interval_between_parallel_batches(interval, ago, expect_dispatch, wake):
    last = {D: T0 - timedelta(seconds=ago)} if ago is not None else {}
    instances = [osi("n1", dispatch=D)]  # n1 done in an earlier batch
    nodes = [node("n1", version=NEW), node("n2"), node("n3")]
    p = one([os_obj(timeinterval=interval)], nodes, instances, last_dispatch=last)
    assert bool(dispatched(p)) is expect_dispatch
    assert p.wake_after == (pytest.approx(wake) if wake is not None else None)


def test_i1_default_interval_is_15s_and_recorded_time_survives_a_new_leader():
    obj = os_obj(timeinterval=None)
    obj["status"] = {"dispatch": D, "lastDispatchTime": "2026-11-25T11:59:50Z"}
    p = one([obj], workers(3), [osi("n1", dispatch=D)])
    assert dispatched(p) == [] and p.wake_after == pytest.approx(5.0)


def test_failed_node_is_not_redispatched_counts_as_failed_and_keeps_its_slot():
    failed = osi("n1", nodestatus="upgrade", dispatch=D, phase="failed", reason="checksum")
    p = one([os_obj(maxunavailable=2)], workers(4), [failed])
    assert dispatched(p) == ["n2"]  # one slot left
    assert p.status["nodes"]["failed"] == 1
    assert p.status["failedNodes"] == ["n1"]
    assert cond(p, "Degraded")["status"] == "True"
    assert "checksum" in cond(p, "Degraded")["message"]
    assert [(n.reason) for n in p.notes] == ["NodeFailed"]


def test_a_bad_image_cannot_spread_when_every_slot_failed():
    instances = [osi(f"n{i}", nodestatus="upgrade", dispatch=D, phase="failed") for i in (1, 2)]
    p = one([os_obj(maxunavailable=2)], workers(6), instances)
    assert dispatched(p) == []
    assert p.status["phase"] == PHASE_FAILED
    assert p.status["nodes"]["pending"] == 4


def test_failure_events_are_posted_once():
    instances = [osi("n1", nodestatus="upgrade", dispatch=D, phase="failed")]
    obj = os_obj(maxunavailable=1)
    first = one([obj], workers(2), instances)
    obj["status"] = dict(first.status)
    assert one([obj], workers(2), instances).notes == ()


def test_a_new_generation_is_a_new_dispatch_and_releases_failed_nodes():
    failed = osi("n1", nodestatus="upgrade", dispatch=D, phase="failed")
    p = one([os_obj(generation=2, maxunavailable=1)], workers(2), [failed])
    assert dispatched(p) == ["n1"]
    assert p.decisions[0].spec["dispatch"] == "uid-os-a:2"


def test_a_node_that_finished_the_dispatch_is_never_given_it_again():
    # the agent set idle but the kubelet has not yet reported the new osImage
    done = osi("n1", nodestatus="idle", dispatch=D, phase="done", status_dispatch=D)
    p = one([os_obj(maxunavailable=2)], workers(1), [done])
    assert dispatched(p) == []
    assert p.status["phase"] == PHASE_COMPLETED


def test_c5_a_node_stuck_in_failed_config_is_dispatched_again_on_a_new_generation():
    stuck = osi("n1", nodestatus="config", dispatch="uid-os-a:1", phase="failed",
                sysversion="1")
    obj = os_obj(opstype="config", osversion=OLD, sysconfigs=cfg("1"), generation=2)
    p = one([obj], workers(1), [stuck])
    assert dispatched(p) == ["n1"]  # "set the version back and apply again" -> idle


def test_a_node_stuck_on_an_old_failed_upgrade_with_nothing_to_do_is_released():
    stuck = osi("n1", nodestatus="upgrade", dispatch="uid-os-a:1", phase="failed")
    p = one([os_obj(generation=2)], [node("n1", version=NEW)], [stuck])
    assert [(d.node, d.kind) for d in p.decisions] == [("n1", "reset")]
    assert p.decisions[0].spec == {"nodestatus": "idle", "dispatch": ""}
    assert p.status["nodes"]["done"] == 1 and p.status["phase"] == PHASE_COMPLETED


# --- E2 / I4: serial --------------------------------------------------------------------------
def serial_os(**kw: Any) -> dict[str, Any]:
    return os_obj(executionmode="serial", maxunavailable=3, **kw)


def test_e2_serial_picks_a_batch_and_dispatches_one_node():
    p = one([serial_os(timeinterval=30)], workers(5))
    assert dispatched(p) == ["n1"]
    assert p.status["batch"] == ["n1", "n2", "n3"]


def test_e2_serial_waits_while_a_node_of_the_batch_is_busy():
    obj = serial_os(status={"dispatch": D, "batch": ["n1", "n2", "n3"]})
    p = one([obj], workers(5), [osi("n1", nodestatus="upgrade", dispatch=D)])
    assert dispatched(p) == [] and p.wake_after is None


def test_i4_serial_next_node_of_the_batch_after_the_gap():
    obj = serial_os(timeinterval=30, status={"dispatch": D, "batch": ["n1", "n2", "n3"]})
    nodes = [node("n1", version=NEW), *workers(5)[1:]]
    done = [osi("n1", dispatch=D)]
    early = one([obj], nodes, done, last_dispatch={D: T0 - timedelta(seconds=5)})
    assert dispatched(early) == [] and early.wake_after == pytest.approx(SERIAL_NODE_GAP - 5)
    late = one([obj], nodes, done, last_dispatch={D: T0 - timedelta(seconds=16)})
    assert dispatched(late) == ["n2"]


def test_i4_serial_next_batch_waits_timeinterval_after_the_batch_finished():
    obj = serial_os(timeinterval=30, status={"dispatch": D, "batch": ["n1", "n2", "n3"]})
    nodes = [node(f"n{i}", version=NEW) for i in (1, 2, 3)] + [node("n4"), node("n5")]
    done = [osi(f"n{i}", dispatch=D) for i in (1, 2, 3)]
    seen = one([obj], nodes, done)
    assert dispatched(seen) == [] and seen.wake_after == pytest.approx(30)
    assert seen.status["batchFinishedTime"] == "2026-11-25T12:00:00Z"
    obj["status"] = dict(seen.status)
    later = one([obj], nodes, done, now=T0 + timedelta(seconds=31))
    assert dispatched(later) == ["n4"] and later.status["batch"] == ["n4", "n5"]


def test_e2_serial_batch_shrinks_by_failed_nodes():
    obj = serial_os(status={"dispatch": D, "batch": ["n1", "n2", "n3"]})
    nodes = [node("n1"), node("n2", version=NEW), node("n3", version=NEW), *workers(6)[3:]]
    instances = [osi("n1", nodestatus="upgrade", dispatch=D, phase="failed"),
                 osi("n2", dispatch=D), osi("n3", dispatch=D)]
    p = one([obj], nodes, instances, now=T0 + timedelta(seconds=60))
    assert dispatched(p) == ["n4"] and p.status["batch"] == ["n4", "n5"]


# --- W1-W4: time window ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("window", "now", "open_", "wake"),
    [
        ({"starttime": "11:00:00", "endtime": "13:00:00"}, "12:00:00", True, None),
        ({"starttime": "13:00:00", "endtime": "14:00:00"}, "12:00:00", False, 3600),
        ({"starttime": "09:00:00", "endtime": "10:00:00"}, "12:00:00", False, 21 * 3600),
        # W3: crossing midnight
        ({"starttime": "22:00:00", "endtime": "02:00:00"}, "23:30:00", True, None),
        ({"starttime": "22:00:00", "endtime": "02:00:00"}, "01:59:59", True, None),
        ({"starttime": "22:00:00", "endtime": "02:00:00"}, "02:00:01", False, 72000 - 1),
        ({"starttime": "22:00:00", "endtime": "02:00:00"}, "12:00:00", False, 36000),
        # absolute windows
        ({"starttime": "2026-11-25 11:00:00", "endtime": "2026-11-25 13:00:00"}, "12:00:00",
         True, None),
        ({"starttime": "2026-11-26 12:00:00", "endtime": "2026-11-26 13:00:00"}, "12:00:00",
         False, 86400),
        ({"starttime": "2026-11-24 12:00:00", "endtime": "2026-11-24 13:00:00"}, "12:00:00",
         False, None),
    ],
)
def test_w1_to_w4_time_window(window, now, open_, wake):
    h, m, s = map(int, now.split(":"))
    at = T0.replace(hour=h, minute=m, second=s)
    p = one([os_obj(timewindow=window)], workers(3), now=at)
    assert bool(dispatched(p)) is open_
    if not open_:
        assert p.status["phase"] == PHASE_WAITING
        assert "[W4]" in p.status["message"]
        assert p.wake_after == (pytest.approx(wake) if wake is not None else None)


def test_w4_nodes_already_dispatched_finish_outside_the_window():
    window = {"starttime": "13:00:00", "endtime": "14:00:00"}
    instances = [osi("n1", nodestatus="upgrade", dispatch=D)]
    p = one([os_obj(timewindow=window)], workers(3), instances)
    assert dispatched(p) == []
    assert p.status["phase"] == PHASE_PROGRESSING and p.status["nodes"]["inProgress"] == 1


def test_w2_window_is_read_in_the_given_zone():
    from datetime import timezone

    window = {"starttime": "13:00:00", "endtime": "14:00:00"}  # 12:00 UTC is 13:00 at +01:00
    p = plan(Snapshot([os_obj(timewindow=window)], workers(1), [], T0,
                      tz=timezone(timedelta(hours=1)))).per_os[0]
    assert dispatched(p) == ["n1"]


# --- status and events -------------------------------------------------------------------------
def test_status_records_counts_phase_and_observed_generation():
    instances = [osi("n1", nodestatus="upgrade", dispatch="uid-os-a:3")]
    nodes = [node("n0", version=NEW), *workers(4)]
    p = one([os_obj(generation=3, maxunavailable=2)], nodes, instances)
    st = p.status
    assert st["observedGeneration"] == 3 and st["dispatch"] == "uid-os-a:3"
    assert st["nodes"] == {"total": 5, "done": 1, "inProgress": 2, "failed": 0, "pending": 2}
    assert st["phase"] == PHASE_PROGRESSING
    assert st["lastDispatchTime"] == "2026-11-25T12:00:00Z"
    assert cond(p, "Accepted")["status"] == "True"
    assert cond(p, "Progressing")["status"] == "True"


def test_completion_is_announced_once_and_conditions_keep_their_transition_time():
    obj = os_obj()
    nodes = [node("n1", version=NEW)]
    first = one([obj], nodes, [osi("n1", dispatch=D)])
    assert first.status["phase"] == PHASE_COMPLETED
    assert [n.reason for n in first.notes] == ["Completed"]
    obj["status"] = dict(first.status)
    later = one([obj], nodes, [osi("n1", dispatch=D)], now=T0 + timedelta(hours=1))
    assert later.notes == () and later.status == first.status


def test_a_hand_edited_status_cannot_break_or_stall_the_planner():
    garbage = {"dispatch": D, "batch": "n1n2", "failedNodes": 7, "conditions": "x",
               "lastDispatchTime": "2999-01-01T00:00:00Z", "batchFinishedTime": "garbage"}
    obj = os_obj(timeinterval=15, status=garbage)
    p = one([obj], workers(2))
    assert dispatched(p) == ["n1", "n2"]  # a time in the future is not believed
    later = one([obj], workers(2), last_dispatch={D: T0}, now=T0 + timedelta(seconds=5))
    assert dispatched(later) == [] and later.wake_after == pytest.approx(10)
    serial = one([os_obj(executionmode="serial", status=dict(garbage))], workers(2))
    assert dispatched(serial) == ["n1"] and serial.status["batch"] == ["n1", "n2"]


def test_status_names_every_failed_node_and_the_message_stays_short():
    instances = [osi(f"n{i:02}", nodestatus="upgrade", dispatch=D, phase="failed", reason="x")
                 for i in range(30)]
    nodes = [node(f"n{i:02}") for i in range(30)]
    p = one([os_obj(maxunavailable=30)], nodes, instances)
    assert len(p.status["failedNodes"]) == 30
    assert cond(p, "Degraded")["message"].endswith("and 10 more")
