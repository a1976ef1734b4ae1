"""The rollout display's batch numbering, on hand-made snapshots (no cluster)."""

from __future__ import annotations

import io

from kubeos.sim.display import Batches, PlainDisplay
from kubeos.sim.monitor import NodeRow, Snapshot


def snap(at: float, busy: set[str], os_batch: tuple[str, ...] = ()) -> Snapshot:
    rows = tuple(
        NodeRow(n, "upgrade" if n in busy else "idle", "", "KubeOS 1.0.0", True)
        for n in ("node-1", "node-2", "node-3", "node-4")
    )
    return Snapshot(at, rows, os_batch=os_batch)


def test_parallel_batches_are_dispatch_rounds() -> None:
    b = Batches(gap=0.5)
    assert b.update(snap(1.0, {"node-1"})) == ["node-1"]
    b.update(snap(1.1, {"node-1", "node-2"}))
    b.update(snap(3.0, {"node-3"}))
    b.update(snap(3.2, {"node-3", "node-4"}))
    assert b.of == {"node-1": 1, "node-2": 1, "node-3": 2, "node-4": 2}


def test_serial_batches_follow_the_os_status_batch() -> None:
    """E2: nodes of one batch are dispatched seconds apart but stay one batch."""
    b = Batches(gap=0.5)
    b.update(snap(1.0, {"node-1"}))
    b.update(snap(1.1, {"node-1"}, ("node-1", "node-2")))
    b.update(snap(3.0, {"node-2"}, ("node-1", "node-2")))
    b.update(snap(5.0, {"node-3"}, ("node-1", "node-2")))  # status not updated yet
    b.update(snap(5.1, {"node-3"}, ("node-3", "node-4")))
    b.update(snap(7.0, {"node-4"}, ("node-3", "node-4")))
    assert b.of == {"node-1": 1, "node-2": 1, "node-3": 2, "node-4": 2}


def test_plain_display_prints_changes_only() -> None:
    out = io.StringIO()
    display = PlainDisplay(lambda _n: "A", out)
    display.update(snap(0.0, set()))
    display.update(snap(0.5, {"node-2"}))
    display.update(snap(0.6, {"node-2"}))
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 + 2  # four nodes, then the dispatch and node-2's new state
    assert lines[4] == "[   0.5s] batch 1: dispatched node-2"
    assert lines[5].startswith("[   0.5s] node-2     upgrade")
