"""`kubeos simulate`: one rollout on the embedded cluster, shown live, with an exit code."""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from kubeos.sim.cluster import IMAGE_PATH, NEW_VERSION, ClusterConfig, EmbeddedCluster
from kubeos.sim.display import make_display
from kubeos.sim.monitor import Snapshot

log = logging.getLogger(__name__)
#: After the last node settles, how long to wait for the operator's OS status to agree.
OS_STATUS_GRACE = 3.0


@dataclass(frozen=True)
class SimulateOptions:
    nodes: int = 4
    maxunavailable: int = 2
    mode: str = "parallel"
    imagetype: str = "disk"
    workdir: Path | None = None
    keep: bool = False
    timeout: float = 300.0
    timeinterval: int = 0
    #: nodes whose download is corrupted (they refuse the image: D4) - to watch a failure
    fail_nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    ok: bool
    seconds: float
    message: str
    final: Snapshot | None


def simulate(opts: SimulateOptions, out: TextIO) -> Outcome:
    """Build the cluster, apply the upgrade, show every change until done, failed or timeout."""
    workdir = opts.workdir or Path(tempfile.mkdtemp(prefix="kubeos-sim-"))
    started = time.monotonic()
    outcome: Outcome | None = None
    try:
        print(
            f"kubeos simulate: {opts.nodes} nodes, maxunavailable={opts.maxunavailable},"
            f" {opts.mode}, imagetype {opts.imagetype}; work dir {workdir}",
            file=out,
            flush=True,
        )
        with EmbeddedCluster(workdir, ClusterConfig(nodes=opts.nodes)) as cluster:
            for name in opts.fail_nodes:
                if name not in cluster.machines:
                    raise ValueError(f"--fail-node {name!r}: no such node (node-1 ...)")
                cluster.images.corrupt_for(name, IMAGE_PATH)
            print(
                f"cluster up in {time.monotonic() - started:.1f}s: API {cluster.api.url},"
                f" image server {cluster.images.url('')} (mTLS), nodes run KubeOS 1.0.0 on root A;"
                f" applying OS os-sample: upgrade to {NEW_VERSION}",
                file=out,
                flush=True,
            )
            cluster.apply_os(
                cluster.upgrade_spec(
                    maxunavailable=opts.maxunavailable,
                    executionmode=opts.mode,
                    timeinterval=opts.timeinterval,
                )
            )
            outcome = _follow(cluster, opts, out, started)
            print(outcome.message, file=out, flush=True)
            if not outcome.ok:
                print(f"agent logs: {workdir}/nodes/*/host/var/log/kubeos-agent.log", file=out)
            return outcome
    finally:
        # A failed run keeps its work dir: the agents' logs are the evidence (G7).
        if not opts.keep and opts.workdir is None and outcome is not None and outcome.ok:
            shutil.rmtree(workdir, ignore_errors=True)


def _follow(
    cluster: EmbeddedCluster, opts: SimulateOptions, out: TextIO, started: float
) -> Outcome:
    assert cluster.monitor is not None
    updates = cluster.monitor.updates
    targets = sorted(cluster.machines)
    deadline = time.monotonic() + opts.timeout
    snap: Snapshot | None = None
    settled_at: float | None = None
    with make_display(lambda n: cluster.machines[n].booted_root, out) as display:
        while time.monotonic() < deadline:
            try:
                snap = updates.get(timeout=0.5)
            except queue.Empty:
                snap = None
            if snap is not None:
                display.update(snap)
                healthy = [r.node for r in snap.rows if r.phase != "failed"]
                if settled_at is None and cluster.settled(snap, healthy, NEW_VERSION):
                    settled_at = time.monotonic()
            # Done when every node is; give the operator a moment to say so on the OS too.
            if settled_at is not None and (
                (snap is not None and snap.os_phase in ("Completed", "Failed"))
                or time.monotonic() - settled_at > OS_STATUS_GRACE
            ):
                return _outcome(cluster, targets, settled_at - started)
    return Outcome(
        False,
        time.monotonic() - started,
        f"TIMEOUT: not every node runs {NEW_VERSION} after {opts.timeout:g}s",
        snap,
    )


def _outcome(cluster: EmbeddedCluster, targets: list[str], took: float) -> Outcome:
    """Every node is either done or failed: say which."""
    assert cluster.monitor is not None
    snap = cluster.monitor.latest()
    failed = [r for r in snap.rows if r.phase == "failed"]
    if failed:
        reasons = "; ".join(f"{r.node}: {r.reason}" for r in failed)
        return Outcome(
            False,
            took,
            f"FAILED: {len(failed)} of {len(targets)} nodes failed ({reasons});"
            f" the others run {NEW_VERSION} after {took:.1f}s",
            snap,
        )
    return Outcome(
        True,
        took,
        f"done: all {len(targets)} nodes run {NEW_VERSION} in {took:.1f}s"
        f" ({len(cluster.reboots)} reboots)",
        snap,
    )
