"""Where one node stands relative to one OS dispatch (OSInstance contract, U1/C1/C2/R3).

A dispatch id is `"<os uid>:<os generation>"`: a new generation is a new dispatch, and a
node that already carries a dispatch (done or failed) is never given the same one again.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubeos.models.os import OSSpec


class NodeState(enum.Enum):
    DONE = "done"  # at the target (or finished this dispatch)
    IN_PROGRESS = "inProgress"  # busy with an operation (this dispatch or another)
    FAILED = "failed"  # failed this dispatch: counted, keeps its slot, not re-dispatched
    PENDING = "pending"  # needs this dispatch
    STALE = "stale"  # stuck on a failed older dispatch, nothing to do now: reset to idle
    SKIPPED = "skipped"  # not eligible (C1: config where the node runs another version)


def _mapping(obj: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    value = obj.get(key) if obj else None
    return value if isinstance(value, Mapping) else {}


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def os_image(node: Mapping[str, Any]) -> str:
    """The version the node runs, as the kubelet reports it (node.status.nodeInfo.osImage)."""
    return _text(_mapping(_mapping(node, "status"), "nodeInfo"), "osImage")


def applied_version(osinstance: Mapping[str, Any] | None, block: str) -> str:
    """status.<sysconfigs|upgradeconfigs>.version; absent counts as "" (C2)."""
    value = _mapping(_mapping(osinstance, "status"), block).get("version")
    return "" if value is None else str(value)


@dataclass(frozen=True)
class InstanceView:
    """The parts of an OSInstance the operator reads."""

    nodestatus: str
    spec_dispatch: str
    status_dispatch: str
    phase: str
    reason: str

    @classmethod
    def of(cls, osinstance: Mapping[str, Any] | None) -> InstanceView:
        spec, status = _mapping(osinstance, "spec"), _mapping(osinstance, "status")
        return cls(
            nodestatus=_text(spec, "nodestatus") or "idle",
            spec_dispatch=_text(spec, "dispatch"),
            status_dispatch=_text(status, "dispatch"),
            phase=_text(status, "phase"),
            reason=_text(status, "reason"),
        )

    @property
    def failed_dispatch(self) -> str:
        """The dispatch this node failed and still holds (agent leaves nodestatus, C5)."""
        if self.phase == "failed" and self.status_dispatch:
            return self.status_dispatch
        return ""

    def finished(self, dispatch: str) -> bool:
        """The agent completed `dispatch` (it sets nodestatus idle on success only)."""
        if self.status_dispatch == dispatch and self.phase == "done":
            return True
        return self.spec_dispatch == dispatch and self.nodestatus == "idle"


def needs_work(spec: OSSpec, node: Mapping[str, Any], osinstance: Mapping[str, Any] | None) -> bool:
    """U1/R3: the node runs another version; C2: the sysconfigs version differs.

    A config applies sysconfigs only: upgradeconfigs go on before an upgrade or rollback
    (U3), and their version is recorded then. Comparing it here would re-dispatch a config
    that can never record it, on every change of the OS.
    """
    if spec.opstype in ("upgrade", "rollback"):
        return os_image(node) != spec.osversion
    want_sys = spec.sysconfigs.version if spec.sysconfigs else ""
    return applied_version(osinstance, "sysconfigs") != want_sys


def eligible(spec: OSSpec, node: Mapping[str, Any]) -> bool:
    """C1: config only where the node already runs `osversion`."""
    return spec.opstype != "config" or os_image(node) == spec.osversion


def classify(
    spec: OSSpec, dispatch: str, node: Mapping[str, Any], osinstance: Mapping[str, Any] | None
) -> tuple[NodeState, str]:
    """The node's state for `dispatch`, with a reason when it failed."""
    view = InstanceView.of(osinstance)
    failed = view.failed_dispatch
    if failed and failed == dispatch and view.spec_dispatch in (dispatch, ""):
        return NodeState.FAILED, view.reason or "the agent reported a failure"
    if view.nodestatus != "idle" and not (failed and failed == view.spec_dispatch):
        return NodeState.IN_PROGRESS, ""
    if view.finished(dispatch):
        return NodeState.DONE, ""
    if not eligible(spec, node):
        return (NodeState.STALE if view.nodestatus != "idle" else NodeState.SKIPPED), ""
    if needs_work(spec, node, osinstance):
        return NodeState.PENDING, ""
    if view.nodestatus != "idle":
        # C5 recovery: a node left in `config` by an older failed dispatch; for config the
        # admin's "apply again" must reach the agent, so dispatch; otherwise just release it.
        return (NodeState.PENDING if spec.opstype == "config" else NodeState.STALE), ""
    return NodeState.DONE, ""
