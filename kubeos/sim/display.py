"""Show the rollout as it happens: a live table on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from kubeos.sim.monitor import NodeRow, Snapshot

#: node name -> the root it runs from ("A"/"B"), read from the machine itself.
PartitionOf = Callable[[str], str]
PHASE_STYLE = {"done": "green", "failed": "bold red", "rebooting": "yellow"}


def _phase(row: NodeRow) -> str:
    return row.phase or "-"


class Batches:
    """Numbers the operator's batches as the nodes get dispatched.

    Serial mode (E2): the OS status names the current batch, whose nodes are dispatched
    one after another. Parallel mode: the operator writes a batch as one OSInstance
    update per node, so they arrive as separate changes; a gap of more than `gap`
    seconds starts a new batch.
    """

    def __init__(self, gap: float = 0.5) -> None:
        self.gap = gap
        self.of: dict[str, int] = {}  # node -> batch number (its latest dispatch)
        self.count = 0
        self._last_at = -1e9
        self._busy: frozenset[str] = frozenset()
        self._named: frozenset[str] = frozenset()  # the OS status's batch when it began

    def update(self, snap: Snapshot) -> list[str]:
        """Nodes newly dispatched in this snapshot (they join the current or a new batch)."""
        busy = frozenset(r.node for r in snap.rows if r.nodestatus != "idle")
        new = sorted(busy - self._busy, key=lambda n: [r.node for r in snap.rows].index(n))
        self._busy = busy
        named = frozenset(snap.os_batch)
        current = {n for n, b in self.of.items() if b == self.count}
        if named and current and current <= named:
            self._named = named  # the status now names the batch we are in
        if new:
            if named:
                starts = not set(new) <= self._named
                self._named = named
            else:
                starts = snap.at - self._last_at > self.gap
            if starts:
                self.count += 1
            self._last_at = snap.at
            for name in new:
                self.of[name] = self.count
        return new


class PlainDisplay:
    """One line per node change (logs, CI, pipes)."""

    def __init__(self, partition_of: PartitionOf, out: TextIO = sys.stdout) -> None:
        self.partition_of = partition_of
        self.out = out
        self.last: dict[str, tuple[str, str, str, str]] = {}
        self.last_message = ""
        self.batches = Batches()

    def __enter__(self) -> PlainDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.out.flush()

    def update(self, snap: Snapshot) -> None:
        dispatched = self.batches.update(snap)
        if dispatched:
            print(
                f"[{snap.at:6.1f}s] batch {self.batches.count}: dispatched {', '.join(dispatched)}",
                file=self.out,
            )
        for row in snap.rows:
            part = self.partition_of(row.node)
            state = (row.nodestatus, _phase(row), row.version, part)
            if self.last.get(row.node) == state:
                continue
            self.last[row.node] = state
            line = (
                f"[{snap.at:6.1f}s] {row.node:<10} {row.nodestatus:<9} {_phase(row):<12}"
                f" {row.version:<14} root {part}"
            )
            if row.phase == "failed" and row.reason:
                line += f"  reason: {row.reason}"
            print(line, file=self.out)
        if snap.os_message and snap.os_message != self.last_message:
            self.last_message = snap.os_message
            print(f"[{snap.at:6.1f}s] OS: {snap.os_message}", file=self.out)
        self.out.flush()


class LiveDisplay:
    """A table redrawn per change (interactive terminal)."""

    def __init__(self, partition_of: PartitionOf, console: Console | None = None) -> None:
        self.partition_of = partition_of
        self.console = console or Console()
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self.batches = Batches()

    def __enter__(self) -> LiveDisplay:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def update(self, snap: Snapshot) -> None:
        self.batches.update(snap)
        table = Table(title=f"kubeos rollout  ({snap.at:.1f}s)", title_justify="left")
        for col in ("NODE", "BATCH", "NODESTATUS", "PHASE", "VERSION (osImage)", "ROOT", "READY"):
            table.add_column(col)
        for row in snap.rows:
            busy = row.nodestatus != "idle"
            table.add_row(
                Text(row.node, style="bold" if busy else ""),
                str(self.batches.of.get(row.node, "-")),
                row.nodestatus,
                Text(_phase(row), style=PHASE_STYLE.get(row.phase, "")),
                row.version,
                self.partition_of(row.node),
                "yes" if row.ready else Text("no", style="yellow"),
            )
        lines = [table, Text(f"OS: {snap.os_message or '(waiting for the operator)'}")]
        lines += [Text(f"{r.node} failed: {r.reason}", style="red") for r in snap.rows if r.reason]
        self.live.update(Group(*lines), refresh=True)


def make_display(partition_of: PartitionOf, out: TextIO = sys.stdout) -> PlainDisplay | LiveDisplay:
    if out.isatty():
        return LiveDisplay(partition_of)
    return PlainDisplay(partition_of, out)
