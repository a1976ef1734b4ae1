"""Property checks: drive the pure planner against a simulated fleet over many random runs.

Each step applies the plan's writes the way the controller does, lets a fake agent finish
or fail some busy nodes, and advances time. Invariants checked after every plan:
never more than maxunavailable busy-or-failed (E1), serial never two busy (E2), no
dispatch outside the window (W4), no node given the same dispatch twice, and a fleet
without failures always completes.
"""

from __future__ import annotations

import random
from datetime import UTC, timedelta
from typing import Any

import pytest

from kubeos.models.timewindow import parse_timewindow
from kubeos.operator.planner import PHASE_COMPLETED, Snapshot, plan
from tests.operator.builders import NEW, OLD, T0, node, os_obj

SEEDS = range(60)


def _fleet(rng: random.Random) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    mode = rng.choice(["serial", "parallel"])
    window = rng.choice([
        None,
        {"starttime": "11:00:00", "endtime": "11:30:00"},
        {"starttime": "23:00:00", "endtime": "00:10:00"},  # crosses midnight
    ])
    obj = os_obj(
        executionmode=mode,
        maxunavailable=rng.randint(1, 4),
        timeinterval=rng.choice([0, 1, 15, 60]),
        timewindow=window,
        nodeselector=rng.choice([None, "all-label", "gpu"]) or None,
    )
    if obj["spec"].get("nodeselector") is None:
        obj["spec"].pop("nodeselector", None)
    nodes = []
    for i in range(rng.randint(1, 9)):
        label = rng.choice([None, "gpu", "cpu"])
        role = "control-plane" if rng.random() < 0.1 else None
        version = NEW if rng.random() < 0.2 else OLD
        n = node(f"n{i}", version=version, role=role,
                 **({"selector": label} if label is not None else {}))
        nodes.append(n)
    return obj, nodes


def _busy(inst: dict[str, Any]) -> bool:
    st = inst.get("status") or {}
    failed = st.get("phase") == "failed" and st.get("dispatch") == inst["spec"].get("dispatch")
    return inst["spec"].get("nodestatus", "idle") != "idle" and not failed


@pytest.mark.parametrize("seed", SEEDS)
def test_rollout_invariants(seed: int) -> None:
    rng = random.Random(seed)
    obj, nodes = _fleet(rng)
    spec = obj["spec"]
    dispatch = "uid-os-a:1"
    window, _ = parse_timewindow(spec.get("timewindow"))
    fail_rate = rng.choice([0.0, 0.0, 0.15])
    instances: dict[str, dict[str, Any]] = {}
    given: set[str] = set()
    last: dict[str, Any] = {}
    now = T0.replace(hour=rng.choice([10, 11, 23]), minute=rng.randint(0, 59))
    by_name = {n["metadata"]["name"]: n for n in nodes}
    completed = False
    for _step in range(400):
        p = plan(Snapshot([obj], nodes, list(instances.values()), now, last, tz=UTC)).per_os[0]
        new = [d for d in p.decisions if d.kind == "dispatch"]
        if new:
            assert window is None or window.is_open(now.replace(tzinfo=None)), "W4"
            last[dispatch] = now
        for d in new:
            assert d.node not in given, f"{d.node} dispatched twice"
            given.add(d.node)
            inst = instances.setdefault(d.node, {"metadata": {"name": d.node}, "spec": {}})
            inst["spec"] = {**inst["spec"], **d.spec}
        obj["status"] = dict(p.status)
        members = set(given)
        busy = [n for n in members if _busy(instances[n])]
        failed = [n for n in members
                  if (instances[n].get("status") or {}).get("phase") == "failed"]
        assert len(busy) + len(failed) <= spec["maxunavailable"], "E1: maxunavailable"
        if spec.get("executionmode") == "serial":
            assert len(busy) <= 1, "E2: serial has one node in progress"
        if p.status["phase"] == PHASE_COMPLETED:
            completed = True
            break
        # the fake agent: finish or fail some busy nodes
        for name in busy:
            if rng.random() < 0.5:
                inst = instances[name]
                if rng.random() < fail_rate:
                    inst["status"] = {"dispatch": dispatch, "phase": "failed", "reason": "bad"}
                else:
                    by_name[name]["status"]["nodeInfo"]["osImage"] = NEW
                    inst["spec"]["nodestatus"] = "idle"
                    inst["status"] = {"dispatch": dispatch, "phase": "done"}
        wait = p.wake_after
        step = wait if wait else rng.choice([1.0, 5.0, 20.0])
        now = now + timedelta(seconds=max(step, 0.5))
    if fail_rate == 0.0:
        assert completed, f"rollout never completed: {obj['status']}"


def test_interval_zero_still_sleeps_between_rounds_when_nothing_changes():
    """I2: with timeinterval 0 and every slot busy the plan asks for no timed wake-up,
    so the controller only runs again on a change (it cannot spin)."""
    obj = os_obj(timeinterval=0, maxunavailable=1)
    instances = [{"metadata": {"name": "n1"}, "spec": {"nodestatus": "upgrade",
                                                        "dispatch": "uid-os-a:1"}}]
    p = plan(Snapshot([obj], [node("n1"), node("n2")], instances, T0, tz=UTC)).per_os[0]
    assert p.decisions == () and p.wake_after is None


def test_plan_is_deterministic_and_does_not_mutate_its_input():
    import copy

    obj = os_obj(maxunavailable=2)
    nodes = [node(f"n{i}") for i in range(5)]
    before = copy.deepcopy((obj, nodes))
    a = plan(Snapshot([obj], nodes, [], T0, tz=UTC))
    b = plan(Snapshot([obj], nodes, [], T0, tz=UTC))
    assert a == b and (obj, nodes) == before
    assert [d.node for d in a.per_os[0].decisions] == ["n0", "n1"]
    assert T0.tzinfo is UTC
