"""The operator's decisions as a pure function of what it has seen (no API access).

`plan(snapshot)` -> for each OS: the nodes to dispatch now, the OS status to record, the
Events to post and when to look again. Rules: N1-N5 (selection, uniqueness), W1-W4 (time
window), I1-I4 (interval), E1-E2 (parallel / serial), U1, C1, C2, R3 (what a node needs).

Counting (a batch never exceeds maxunavailable): every matching node that is busy
(any operation, any OS) and every node that failed the current dispatch occupies a slot.
A failed node is not re-dispatched for the same dispatch, so a bad image stops spreading;
a new OS generation is a new dispatch and releases it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from kubeos.models.os import OSSpec, validate_spec
from kubeos.models.osinstance import UPGRADE_FIELDS
from kubeos.models.settings import SysConfigs
from kubeos.operator.nodestate import NodeState, classify
from kubeos.operator.selection import Claim, matching_workers, n5_refusals, name_of
from kubeos.operator.window import seconds_until_open

#: I4: inside a serial batch nodes are handled one by one, this far apart (at most the
#: OS's timeinterval, so an admin asking for 0 is not held back).
SERIAL_NODE_GAP = 15.0
#: Failed nodes named in the Degraded condition's message; the list and counts are exact.
MAX_LISTED_NODES = 20

PHASE_REFUSED = "Refused"
PHASE_WAITING = "Waiting"
PHASE_PROGRESSING = "Progressing"
PHASE_COMPLETED = "Completed"
PHASE_FAILED = "Failed"


@dataclass(frozen=True)
class Snapshot:
    """What the controller's caches hold at one instant."""

    os_objects: Sequence[Mapping[str, Any]]
    nodes: Sequence[Mapping[str, Any]]
    osinstances: Sequence[Mapping[str, Any]]  # in the operator's namespace, name = node
    now: datetime  # timezone-aware
    #: dispatch id -> when the controller last dispatched it (fresher than the status).
    last_dispatch: Mapping[str, datetime] = field(default_factory=dict)
    #: zone the time windows are written in (W2); None = this machine's local zone.
    tz: tzinfo | None = None


@dataclass(frozen=True)
class Decision:
    """One OSInstance write. kind `dispatch` starts an operation; `reset` releases a node
    stuck on an older failed dispatch that has nothing to do now."""

    node: str
    kind: str  # "dispatch" | "reset"
    spec: Mapping[str, Any]  # the OSInstance spec fields to set
    #: the OSInstance this was decided on (None: it does not exist and must be created);
    #: the write is conditional on its resourceVersion.
    osinstance: Mapping[str, Any] | None


@dataclass(frozen=True)
class Note:
    """An Event to post on the OS."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class OSPlan:
    namespace: str
    name: str
    uid: str
    dispatch: str
    status: Mapping[str, Any]
    decisions: tuple[Decision, ...] = ()
    notes: tuple[Note, ...] = ()
    wake_after: float | None = None  # seconds; None = only when something changes

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Plan:
    per_os: tuple[OSPlan, ...]

    @property
    def wake_after(self) -> float | None:
        waits = [p.wake_after for p in self.per_os if p.wake_after is not None]
        return min(waits) if waits else None


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def os_key(obj: Mapping[str, Any]) -> str:
    meta = _meta(obj)
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"


def dispatch_id(obj: Mapping[str, Any]) -> str:
    """`"<uid>:<generation>"`: the identity of one operation (OSInstance contract)."""
    meta = _meta(obj)
    return f"{meta.get('uid') or ''}:{meta.get('generation') or 0}"


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _sysconfigs(block: SysConfigs | None) -> dict[str, Any]:
    """C2: a missing block is sent as version "" so the node clears its stored version."""
    return (block or SysConfigs()).to_dict()


def dispatch_spec(obj: Mapping[str, Any], spec: OSSpec) -> dict[str, Any]:
    """The OSInstance spec that tells a node's agent what to do for this OS."""
    meta = _meta(obj)
    return {
        "nodestatus": spec.opstype,
        "dispatch": dispatch_id(obj),
        "osref": {"namespace": meta.get("namespace") or "default", "name": meta.get("name")},
        "osversion": spec.osversion,
        "upgrade": {name: getattr(spec, name) for name in UPGRADE_FIELDS},
        "sysconfigs": _sysconfigs(spec.sysconfigs),
        "upgradeconfigs": _sysconfigs(spec.upgradeconfigs),
    }


RESET_SPEC: Mapping[str, Any] = {"nodestatus": "idle", "dispatch": ""}


def plan(snap: Snapshot) -> Plan:
    """Decide for every OS object in the snapshot."""
    instances = {name_of(o): o for o in snap.osinstances if name_of(o)}
    parsed: dict[str, tuple[Mapping[str, Any], OSSpec | None, str]] = {}
    claims: list[Claim] = []
    for obj in snap.os_objects:
        if not _meta(obj).get("name"):
            continue
        spec, problems = validate_spec(obj.get("spec"))
        why = "; ".join(str(p) for p in problems)
        parsed[os_key(obj)] = (obj, spec, why)
        if spec is not None:
            claims.append(
                Claim(
                    key=os_key(obj),
                    created=str(_meta(obj).get("creationTimestamp") or ""),
                    nodeselector=spec.nodeselector,
                    effective=bool(matching_workers(snap.nodes, spec.nodeselector)),
                )
            )
    refused = n5_refusals(claims)
    plans = []
    for key, (obj, spec, why) in sorted(parsed.items()):
        if spec is None:
            plans.append(_refuse(obj, snap, "Invalid", f"the OS is invalid: {why}"))
        elif key in refused:
            plans.append(_refuse(obj, snap, "NodeSelectorConflict", refused[key]))
        else:
            plans.append(_plan_one(obj, spec, snap, instances))
    return Plan(tuple(plans))


def _names(value: Any) -> list[str]:
    """A node-name list read back from the status; anything else (hand-edited) is empty."""
    if not isinstance(value, list):
        return []
    return [n for n in value if isinstance(n, str)]


def _prev_status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def _condition(
    prev: Mapping[str, Any], ctype: str, status: bool, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    """A condition whose lastTransitionTime moves only when its status flips."""
    value = "True" if status else "False"
    since = _iso(now)
    for c in _conditions(prev):
        if c.get("type") == ctype and c.get("status") == value:
            since = str(c.get("lastTransitionTime") or since)
    return {
        "type": ctype,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    }


def _prev_condition(prev: Mapping[str, Any], ctype: str) -> Mapping[str, Any]:
    for c in _conditions(prev):
        if c.get("type") == ctype:
            return c
    return {}


def _conditions(prev: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    value = prev.get("conditions")
    return [c for c in value if isinstance(c, Mapping)] if isinstance(value, list) else []


def _refuse(obj: Mapping[str, Any], snap: Snapshot, reason: str, message: str) -> OSPlan:
    """N5 / invalid: record why, post one Event when the reason is new, dispatch nothing."""
    meta, prev = _meta(obj), _prev_status(obj)
    accepted = _condition(prev, "Accepted", False, reason, message, snap.now)
    before = _prev_condition(prev, "Accepted")
    notes: tuple[Note, ...] = ()
    if (before.get("status"), before.get("reason"), before.get("message")) != (
        "False",
        reason,
        message,
    ):
        notes = (Note("Warning", "Refused", message),)
    status = {
        "observedGeneration": meta.get("generation") or 0,
        "dispatch": dispatch_id(obj),
        "phase": PHASE_REFUSED,
        "message": message,
        "nodes": {"total": 0, "done": 0, "inProgress": 0, "failed": 0, "pending": 0},
        "failedNodes": [],
        "batch": [],
        "batchFinishedTime": None,
        "lastDispatchTime": prev.get("lastDispatchTime") if _same_dispatch(obj) else None,
        "conditions": [
            accepted,
            _condition(prev, "Progressing", False, reason, "nothing is dispatched", snap.now),
            _condition(prev, "Degraded", False, "NoFailure", "", snap.now),
        ],
    }
    return OSPlan(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name")),
        uid=str(meta.get("uid") or ""),
        dispatch=dispatch_id(obj),
        status=status,
        notes=notes,
    )


def _same_dispatch(obj: Mapping[str, Any]) -> bool:
    return _prev_status(obj).get("dispatch") == dispatch_id(obj)


def _plan_one(
    obj: Mapping[str, Any],
    spec: OSSpec,
    snap: Snapshot,
    instances: Mapping[str, Mapping[str, Any]],
) -> OSPlan:
    meta, prev = _meta(obj), _prev_status(obj)
    dispatch = dispatch_id(obj)
    same = _same_dispatch(obj)

    states: dict[NodeState, list[str]] = {s: [] for s in NodeState}
    reasons: dict[str, str] = {}
    for node in matching_workers(snap.nodes, spec.nodeselector):
        name = name_of(node)
        state, why = classify(spec, dispatch, node, instances.get(name))
        states[state].append(name)
        if why:
            reasons[name] = why

    decisions: list[Decision] = [
        Decision(n, "reset", RESET_SPEC, instances.get(n)) for n in states[NodeState.STALE]
    ]
    last = _last_dispatch(snap, prev, dispatch, same)
    elapsed = (snap.now - last).total_seconds() if last else None
    local_now = snap.now.astimezone(snap.tz).replace(tzinfo=None)
    until_open = seconds_until_open(spec.timewindow, local_now)
    busy = len(states[NodeState.IN_PROGRESS])
    failed = states[NodeState.FAILED]
    pending = states[NodeState.PENDING]
    capacity = spec.maxunavailable - len(failed)  # failures keep their slots
    prev_batch = _names(prev.get("batch")) if same else []
    batch = prev_batch if spec.executionmode == "serial" else []

    finished_at = _parse_iso(prev.get("batchFinishedTime")) if same else None
    chosen: list[str] = []
    wake: float | None = None
    if pending and capacity > busy and until_open != 0.0:
        wake = until_open  # W4: nothing new outside the window; sleep until it opens
    elif pending and spec.executionmode == "serial":
        serial = _serial(spec, pending, prev_batch, busy, capacity, elapsed, finished_at, snap.now)
        chosen, batch, wake, finished_at = serial
    elif pending:
        chosen, wake = _parallel(spec, pending, busy, capacity, elapsed)

    body = dispatch_spec(obj, spec)
    decisions += [Decision(n, "dispatch", body, instances.get(n)) for n in chosen]
    now_busy = busy + len(chosen)
    still_pending = [n for n in pending if n not in chosen]
    done = len(states[NodeState.DONE]) + len(states[NodeState.STALE])  # stale: at target
    total = done + now_busy + len(failed) + len(still_pending)

    if failed and (capacity <= 0 or (not still_pending and not now_busy)):
        phase = PHASE_FAILED
    elif not still_pending and not now_busy and not failed:
        phase = PHASE_COMPLETED
    elif still_pending and not now_busy and until_open != 0.0:
        phase = PHASE_WAITING
    else:
        phase = PHASE_PROGRESSING

    counts = {
        "total": total,
        "done": done,
        "inProgress": now_busy,
        "failed": len(failed),
        "pending": len(still_pending),
    }
    message = _summary(spec, counts, phase, until_open)
    conditions = [
        _condition(prev, "Accepted", True, "Valid", "the OS is accepted", snap.now),
        _condition(
            prev,
            "Progressing",
            phase in (PHASE_PROGRESSING, PHASE_WAITING),
            phase,
            message,
            snap.now,
        ),
        _condition(
            prev,
            "Degraded",
            bool(failed),
            "NodesFailed" if failed else "NoFailure",
            _failed_message(failed, reasons),
            snap.now,
        ),
    ]
    notes = _notes(prev, same, phase, failed, reasons, spec, counts)
    last_time = snap.now if chosen else last
    status = {
        "observedGeneration": meta.get("generation") or 0,
        "dispatch": dispatch,
        "phase": phase,
        "message": message,
        "nodes": counts,
        "failedNodes": failed,  # bounded: failed nodes keep their slots
        "batch": batch,
        "batchFinishedTime": _iso(finished_at) if finished_at and batch else None,
        "lastDispatchTime": _iso(last_time) if last_time else None,
        "conditions": conditions,
    }
    return OSPlan(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name")),
        uid=str(meta.get("uid") or ""),
        dispatch=dispatch,
        status=status,
        decisions=tuple(decisions),
        notes=notes,
        wake_after=wake,
    )


def _last_dispatch(
    snap: Snapshot, prev: Mapping[str, Any], dispatch: str, same: bool
) -> datetime | None:
    """The later of the controller's memory and the recorded status (a new leader)."""
    times = [snap.last_dispatch.get(dispatch)]
    if same:
        times.append(_parse_iso(prev.get("lastDispatchTime")))
    # A time in the future (clock skew, a hand-edited status) is not believed: it would
    # hold the rollout back for as long as it stays in the future.
    known = [t for t in times if t is not None and t <= snap.now]
    return max(known) if known else None


def _parallel(
    spec: OSSpec, pending: list[str], busy: int, capacity: int, elapsed: float | None
) -> tuple[list[str], float | None]:
    """E1/I3: fill free slots, at most one batch per timeinterval."""
    free = capacity - busy
    if free <= 0:
        return [], None  # a finishing node changes the OSInstance and wakes us
    if elapsed is not None and elapsed < spec.timeinterval:
        return [], spec.timeinterval - elapsed
    return pending[:free], None


def _serial(
    spec: OSSpec,
    pending: list[str],
    prev_batch: list[str],
    busy: int,
    capacity: int,
    elapsed: float | None,
    finished_at: datetime | None,
    now: datetime,
) -> tuple[list[str], list[str], float | None, datetime | None]:
    """E2/I4: choose a batch, then dispatch its nodes one after another.

    Returns (nodes to dispatch, the batch, wake-up, when the batch was seen finished).
    The next batch starts timeinterval after the previous one finished.
    """
    if busy:
        return [], prev_batch, None, None  # one node at a time
    remaining = [n for n in prev_batch if n in pending]
    if remaining:
        gap = min(SERIAL_NODE_GAP, float(spec.timeinterval))
        if elapsed is not None and elapsed < gap:
            return [], prev_batch, gap - elapsed, None
        return remaining[:1], prev_batch, None, None
    if prev_batch:
        if finished_at is None or finished_at > now:
            finished_at = now
        waited = max(0.0, (now - finished_at).total_seconds())
        if waited < spec.timeinterval:
            return [], prev_batch, spec.timeinterval - waited, finished_at
    size = capacity - busy
    if size <= 0:
        return [], prev_batch, None, finished_at
    batch = pending[:size]
    return batch[:1], batch, None, None


def _summary(spec: OSSpec, counts: Mapping[str, int], phase: str, until_open: float | None) -> str:
    text = (
        f"{spec.opstype} to {spec.osversion}: {counts['done']}/{counts['total']} done,"
        f" {counts['inProgress']} in progress, {counts['failed']} failed,"
        f" {counts['pending']} pending"
    )
    if phase == PHASE_WAITING:
        text += (
            "; outside the time window [W4]"
            if until_open is not None
            else "; the time window has passed [W4]"
        )
    return text


def _failed_message(failed: list[str], reasons: Mapping[str, str]) -> str:
    text = "; ".join(f"{n}: {reasons.get(n, '')}" for n in failed[:MAX_LISTED_NODES])
    more = len(failed) - MAX_LISTED_NODES
    return f"{text}; and {more} more" if more > 0 else text


def _notes(
    prev: Mapping[str, Any],
    same: bool,
    phase: str,
    failed: list[str],
    reasons: Mapping[str, str],
    spec: OSSpec,
    counts: Mapping[str, int],
) -> tuple[Note, ...]:
    """Events for what is new since the recorded status: failures, completion, recovery."""
    notes: list[Note] = []
    before = _prev_condition(prev, "Accepted")
    if before.get("status") == "False":
        notes.append(Note("Normal", "Accepted", "the OS is accepted now"))
    known = set(_names(prev.get("failedNodes"))) if same else set()
    for n in failed:
        if n not in known:
            notes.append(Note("Warning", "NodeFailed", f"node {n}: {reasons.get(n, '')}"))
    if phase == PHASE_COMPLETED and not (same and prev.get("phase") == PHASE_COMPLETED):
        notes.append(
            Note(
                "Normal",
                "Completed",
                f"{spec.opstype} to {spec.osversion} complete on {counts['total']} node(s)",
            )
        )
    return tuple(notes)
