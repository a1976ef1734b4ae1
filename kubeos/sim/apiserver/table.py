"""Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io`), which is what
`kubectl get` shows: a custom resource's additionalPrinterColumns from its stored CRD, the
usual columns for nodes and pods, NAME and AGE for everything else.

Printer-column jsonPaths are simple paths (`.status.nodes.done`, `.items[0].name`); a
filter expression prints as <unknown>.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubeos.sim.apiserver.resources import ResourceType

Obj = dict[str, Any]
Column = tuple[Obj, Callable[[Obj], Any]]  # (columnDefinition, cell function)

_PATH_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def wanted(accept: str | None) -> str | None:
    """The Table apiVersion the client asks for first, or None for plain JSON."""
    for media in (accept or "").split(","):
        params = dict(p.strip().split("=", 1) for p in media.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return f"meta.k8s.io/{params.get('v', 'v1')}"
        if media.split(";")[0].strip() in ("application/json", "*/*"):
            return None
    return None


def human_age(timestamp: str | None, now: datetime | None = None) -> str:
    """How kubectl shows an age: 45s, 3m12s, 95m, 5h3m, 30h, 3d4h, 400d, 3y20d."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<invalid>"
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 730:
        return f"{days}d"
    years = days // 365
    return f"{years}y{days % 365}d" if years < 8 and days % 365 else f"{years}y"


def _path(obj: Obj, path: str) -> Any:
    if "?" in path or "*" in path:
        return "<unknown>"
    cur: Any = obj
    for key, index in _PATH_PART.findall(path):
        if key and isinstance(cur, dict):
            cur = cur.get(key)
        elif index and isinstance(cur, list) and int(index) < len(cur):
            cur = cur[int(index)]
        else:
            return None
        if cur is None:
            return None
    return cur


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> Obj:
    return {"name": name, "type": kind, "format": fmt, "description": "", "priority": priority}


_NAME: Column = (_col("Name", fmt="name"), lambda o: o["metadata"]["name"])
_AGE: Column = (_col("Age"), lambda o: human_age(o["metadata"].get("creationTimestamp")))


def _node_status(node: Obj) -> str:
    ready = next(
        (c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"),
        None,
    )
    text = (
        "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    )
    if (node.get("spec") or {}).get("unschedulable"):
        text += ",SchedulingDisabled"
    return text


def _node_roles(node: Obj) -> str:
    prefix = "node-role.kubernetes.io/"
    labels = node["metadata"].get("labels") or {}
    roles = sorted(k[len(prefix) :] for k in labels if k.startswith(prefix) and k != prefix)
    return ",".join(roles) or "<none>"


def _internal_ip(node: Obj) -> str:
    addresses = (node.get("status") or {}).get("addresses") or []
    return next((a["address"] for a in addresses if a.get("type") == "InternalIP"), "<none>")


def _pod_ready(pod: Obj) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(pod: Obj) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    return (pod.get("status") or {}).get("phase") or "Unknown"


def _info(key: str) -> Callable[[Obj], Any]:
    return lambda o: ((o.get("status") or {}).get("nodeInfo") or {}).get(key, "")


BUILTIN: dict[str, list[Column]] = {
    "nodes": [
        _NAME,
        (_col("Status"), _node_status),
        (_col("Roles"), _node_roles),
        _AGE,
        (_col("Version"), _info("kubeletVersion")),
        (_col("Internal-IP", priority=1), _internal_ip),
        (_col("OS-Image", priority=1), _info("osImage")),
        (_col("Kernel-Version", priority=1), _info("kernelVersion")),
        (_col("Container-Runtime", priority=1), _info("containerRuntimeVersion")),
    ],
    "pods": [
        _NAME,
        (_col("Ready"), _pod_ready),
        (_col("Status"), _pod_status),
        (
            _col("Restarts", "integer"),
            lambda p: sum(
                s.get("restartCount", 0)
                for s in (p.get("status") or {}).get("containerStatuses") or []
            ),
        ),
        _AGE,
        (_col("IP", priority=1), lambda p: (p.get("status") or {}).get("podIP") or "<none>"),
        (_col("Node", priority=1), lambda p: (p.get("spec") or {}).get("nodeName") or "<none>"),
    ],
}


def _printer_column(spec: Obj) -> Column:
    kind, path = spec.get("type", "string"), spec.get("jsonPath", "")
    definition = _col(spec["name"], kind, int(spec.get("priority", 0)), spec.get("format", ""))
    definition["description"] = spec.get("description", "")
    if kind == "date":
        definition["type"] = "string"
        return definition, lambda o: human_age(_path(o, path))
    return definition, lambda o: _path(o, path)


def columns(rtype: ResourceType, crd: Obj | None) -> list[Column]:
    if rtype.key in BUILTIN:
        return BUILTIN[rtype.key]
    for version in ((crd or {}).get("spec") or {}).get("versions") or []:
        if version.get("name") == rtype.version and version.get("additionalPrinterColumns"):
            return [_NAME, *(_printer_column(c) for c in version["additionalPrinterColumns"])]
    return [_NAME, _AGE]


def table(
    api_version: str,
    rtype: ResourceType,
    items: list[Obj],
    resource_version: str,
    crd: Obj | None = None,
    include_object: str | None = None,
) -> Obj:
    """A meta.k8s.io Table of `items`; rows carry PartialObjectMetadata unless asked."""
    cols = columns(rtype, crd)
    rows = []
    for item in items:
        row: Obj = {"cells": [cell(item) for _, cell in cols]}
        if include_object == "Object":
            row["object"] = item
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": api_version,
                "metadata": item["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [definition for definition, _ in cols],
        "rows": rows,
    }
