"""The PodDisruptionBudget decision of the pods/eviction subresource (policy/v1 semantics).

A pod counts as healthy when its Ready condition is "True"; a pod without any conditions
counts as healthy when its phase is Running (seeded pods in tests rarely carry conditions).
Expected pods, as upstream: with an integer minAvailable the number of matching pods;
otherwise the scale of the pods' controllers (ReplicaSet, Deployment, StatefulSet replicas,
DaemonSet desiredNumberScheduled), so a pod already evicted still counts until its controller
shrinks. A pod whose controller is not stored counts as one (upstream refuses to compute the
budget). Pending, terminal or already-deleting pods are evicted without a check.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from kubeos.sim.apiserver.errors import ApiError
from kubeos.sim.apiserver.selectors import SelectorError, match_label_selector_object

Obj = dict[str, Any]
#: (kind, namespace, name) -> the stored controller object, or None
OwnerLookup = Callable[[str, str, str], Obj | None]
TERMINAL = ("Succeeded", "Failed")


def is_healthy(pod: Obj) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions")
    if conditions:
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return status.get("phase") == "Running"


def _scaled(value: Any, total: int, field: str) -> int:
    """An IntOrString: an int, or "N%" of total rounded up."""
    if isinstance(value, bool):
        raise ApiError(422, f"{field}: must be an integer or a percentage")
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%") and text[:-1].isdigit():
        return math.ceil(int(text[:-1]) * total / 100)
    if text.isdigit():
        return int(text)
    raise ApiError(422, f"{field}: invalid value {value!r}")


def _scale(owner: Obj) -> int:
    if owner.get("kind") == "DaemonSet":
        return int((owner.get("status") or {}).get("desiredNumberScheduled") or 0)
    replicas = (owner.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def expected_pods(budget: Obj, covered: list[Obj], lookup: OwnerLookup) -> int:
    min_available = (budget.get("spec") or {}).get("minAvailable")
    if isinstance(min_available, int) and not isinstance(min_available, bool):
        return len(covered)
    total, seen = 0, set()
    for pod in covered:
        meta = pod["metadata"]
        ref = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        owner = (
            lookup(ref.get("kind", ""), meta.get("namespace", ""), ref.get("name", ""))
            if ref
            else None
        )
        if owner is None:
            total += 1
        elif owner["metadata"]["uid"] not in seen:
            seen.add(owner["metadata"]["uid"])
            total += _scale(owner)
    return total


def desired_healthy(budget: Obj, expected: int) -> int:
    spec = budget.get("spec") or {}
    if spec.get("minAvailable") is not None:
        return _scaled(spec["minAvailable"], expected, "spec.minAvailable")
    if spec.get("maxUnavailable") is not None:
        return max(0, expected - _scaled(spec["maxUnavailable"], expected, "spec.maxUnavailable"))
    return 0


def check(
    pod: Obj, budgets: list[Obj], pods: list[Obj], lookup: OwnerLookup = lambda *_: None
) -> None:
    """Raise 429 TooManyRequests when evicting `pod` would break its budget."""
    status = pod.get("status") or {}
    if status.get("phase") in (*TERMINAL, "Pending") or pod["metadata"].get("deletionTimestamp"):
        return
    labels = pod["metadata"].get("labels") or {}
    try:
        matching = [
            b
            for b in budgets
            if match_label_selector_object((b.get("spec") or {}).get("selector"), labels)
        ]
    except SelectorError as exc:
        raise ApiError(500, f"a PodDisruptionBudget has an invalid selector: {exc}") from exc
    if not matching:
        return
    if len(matching) > 1:
        raise ApiError(
            500,
            "This pod has more than one PodDisruptionBudget, which the eviction subresource "
            "does not support.",
        )
    budget = matching[0]
    selector = (budget.get("spec") or {}).get("selector")
    covered = [
        p
        for p in pods
        if match_label_selector_object(selector, p["metadata"].get("labels") or {})
        and (p.get("status") or {}).get("phase") not in TERMINAL
    ]
    healthy = sum(1 for p in covered if is_healthy(p))
    desired = desired_healthy(budget, expected_pods(budget, covered, lookup))
    if is_healthy(pod):
        allowed = healthy - desired >= 1
    else:
        policy = (budget.get("spec") or {}).get("unhealthyPodEvictionPolicy", "IfHealthyBudget")
        allowed = policy == "AlwaysAllow" or healthy >= desired
    if allowed:
        return
    name = budget["metadata"]["name"]
    raise ApiError(
        429,
        "Cannot evict pod as it would violate the pod's disruption budget.",
        details={
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": f"The disruption budget {name} needs {desired} healthy pods and "
                    f"has {healthy} currently",
                }
            ]
        },
    )
