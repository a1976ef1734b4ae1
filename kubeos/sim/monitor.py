"""Watch the simulated cluster: every state change of every node, in order.

Observes the API stand-in's store on every change (no polling gap), so a test can
assert on the whole history - e.g. that never more than `maxunavailable` nodes were in
an operation at once - and the display can redraw per change.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubeos.sim.apiserver import ApiServer


@dataclass(frozen=True)
class NodeRow:
    node: str
    nodestatus: str
    phase: str
    version: str  # node.status.nodeInfo.osImage
    ready: bool
    reason: str = ""

    @property
    def busy(self) -> bool:
        """In an operation that has not failed: counts against maxunavailable."""
        return self.nodestatus != "idle" and self.phase != "failed"


@dataclass(frozen=True)
class Snapshot:
    at: float  # seconds since the monitor started
    rows: tuple[NodeRow, ...]
    os_message: str = ""
    os_batch: tuple[str, ...] = ()
    os_phase: str = ""  # the operator's OS status.phase (e.g. Progressing, Completed)

    @property
    def busy(self) -> frozenset[str]:
        return frozenset(r.node for r in self.rows if r.busy)

    def row(self, node: str) -> NodeRow | None:
        return next((r for r in self.rows if r.node == node), None)


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def take_snapshot(api: ApiServer, started: float, namespace: str) -> Snapshot:
    nodes = {n["metadata"]["name"]: n for n in api.list("nodes")}
    instances = {o["metadata"]["name"]: o for o in api.list("osinstances", namespace)}
    rows = []
    for name in sorted(nodes, key=_natural):
        node, osi = nodes[name], instances.get(name) or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in _get(node, "status", "conditions") or []
        )
        rows.append(
            NodeRow(
                node=name,
                nodestatus=str(_get(osi, "spec", "nodestatus") or "idle"),
                phase=str(_get(osi, "status", "phase") or ""),
                version=str(_get(node, "status", "nodeInfo", "osImage") or ""),
                ready=ready,
                reason=str(_get(osi, "status", "reason") or ""),
            )
        )
    message, batch, phase = "", (), ""
    for os_obj in api.list("os", namespace):
        message = str(_get(os_obj, "status", "message") or message)
        batch = tuple(str(n) for n in _get(os_obj, "status", "batch") or ())
        phase = str(_get(os_obj, "status", "phase") or phase)
    return Snapshot(time.monotonic() - started, tuple(rows), message, batch, phase)


def _natural(name: str) -> tuple[Any, ...]:
    head = name.rstrip("0123456789")
    tail = name[len(head) :]
    return (head, int(tail) if tail else -1)


@dataclass
class Monitor:
    """Records a Snapshot whenever anything the table shows changes."""

    api: ApiServer
    namespace: str = "default"
    history: list[Snapshot] = field(default_factory=list)
    updates: queue.Queue[Snapshot] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-monitor", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> Monitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _record(self, _items: list[Any]) -> bool:
        if self._stop.is_set():
            return True
        snap = take_snapshot(self.api, self.started, self.namespace)
        with self._lock:
            last = self.history[-1] if self.history else None
            if last is None or (last.rows, last.os_message) != (snap.rows, snap.os_message):
                self.history.append(snap)
                self.updates.put(snap)
        return False

    def _run(self) -> None:
        # The predicate runs under the store's lock after every change to any object.
        while not self._stop.is_set():
            try:
                self.api.wait_for("osinstances", self._record, timeout=1.0)
            except TimeoutError:
                continue
            except Exception:  # the store closed: the cluster is shutting down
                if self._stop.wait(0.1):
                    return

    # -- questions tests ask -----------------------------------------------------------
    def latest(self) -> Snapshot:
        return take_snapshot(self.api, self.started, self.namespace)

    def elapsed(self) -> float:
        """Seconds since the monitor started: the time base of Snapshot.at."""
        return time.monotonic() - self.started

    def max_busy(self, since: float = 0.0) -> int:
        """The most nodes in an operation at once (from `since`, an `elapsed()` value)."""
        with self._lock:
            return max((len(s.busy) for s in self.history if s.at >= since), default=0)

    def ever_busy(self) -> set[str]:
        with self._lock:
            return {n for s in self.history for n in s.busy}

    def wait(self, predicate: Callable[[Snapshot], bool], timeout: float) -> Snapshot:
        deadline = time.monotonic() + timeout
        while True:
            snap = self.latest()
            if predicate(snap):
                return snap
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout:g}s; last state: {snap}")
            time.sleep(0.1)
