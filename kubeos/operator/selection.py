"""N1-N5: which worker nodes an OS handles, and which OS objects may act at all."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubeos import NODE_SELECTOR_LABEL
from kubeos.models.os import ALL_LABEL, NO_LABEL

CONTROL_PLANE_LABELS = (
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
)


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) else ""


def is_worker(node: Mapping[str, Any]) -> bool:
    """N1: control-plane nodes (either role label, any value) are never handled."""
    labels = _labels(node)
    return not any(label in labels for label in CONTROL_PLANE_LABELS)


def selector_class(nodeselector: str | None) -> str:
    """The node class an OS claims: unset and `no-label` are the same class (N2)."""
    if nodeselector is None or nodeselector == NO_LABEL:
        return "unlabelled"
    if nodeselector == ALL_LABEL:
        return "all"
    return f"value={nodeselector}"


def matches(node: Mapping[str, Any], nodeselector: str | None) -> bool:
    """N2-N4 for one worker node."""
    labels = _labels(node)
    if nodeselector == ALL_LABEL:
        return True
    if nodeselector is None or nodeselector == NO_LABEL:
        return NODE_SELECTOR_LABEL not in labels
    return NODE_SELECTOR_LABEL in labels and labels[NODE_SELECTOR_LABEL] == nodeselector


def matching_workers(
    nodes: Sequence[Mapping[str, Any]], nodeselector: str | None
) -> list[Mapping[str, Any]]:
    """The worker nodes an OS with `nodeselector` operates on, sorted by name."""
    out = [n for n in nodes if name_of(n) and is_worker(n) and matches(n, nodeselector)]
    return sorted(out, key=name_of)


@dataclass(frozen=True)
class Claim:
    """One valid OS competing for its node class (N5)."""

    key: str  # "namespace/name"
    created: str  # metadata.creationTimestamp (RFC 3339 sorts as text)
    nodeselector: str | None
    effective: bool  # has at least one matching worker node


def n5_refusals(claims: Sequence[Claim]) -> dict[str, str]:
    """N5: OS key -> why it is refused. The oldest claim of a class keeps it.

    Two OS objects may not claim the same class (unset and `no-label` are one class);
    an `all-label` OS must be the only effective one. The OS that came later is the
    violator, so a running rollout is not stopped by someone applying a second OS.
    """
    refused: dict[str, str] = {}
    accepted: list[Claim] = []
    for c in sorted(claims, key=lambda c: (c.created, c.key)):
        cls = selector_class(c.nodeselector)
        reason = None
        for a in accepted:
            a_cls = selector_class(a.nodeselector)
            if a_cls == cls:
                reason = f"OS {a.key} already selects {_describe(cls)}"
            elif "all" in (a_cls, cls) and a.effective and c.effective:
                reason = (
                    f"OS {a.key} is also effective, and an all-label OS must be the only"
                    " effective OS"
                )
            if reason:
                break
        if reason:
            refused[c.key] = f"{reason} [N5]"
        else:
            accepted.append(c)
    return refused


def _describe(cls: str) -> str:
    if cls == "unlabelled":
        return f"the nodes without label {NODE_SELECTOR_LABEL} (nodeselector unset or no-label)"
    if cls == "all":
        return "all worker nodes (all-label)"
    value = cls.removeprefix("value=")
    return f"the nodes labelled {NODE_SELECTOR_LABEL}={value!r}"
