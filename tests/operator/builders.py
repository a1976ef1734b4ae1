"""Plain builders for OS, Node and OSInstance objects as the API returns them (dicts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubeos import API_VERSION, NODE_SELECTOR_LABEL

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
OLD = "KubeOS 1.0.0"
NEW = "KubeOS 1.0.1"
CHECKSUM = "a" * 64
UNSET = object()


def os_obj(
    name: str = "os-a",
    *,
    uid: str | None = None,
    generation: int = 1,
    created: str = "2026-11-25T10:00:00Z",
    opstype: str = "upgrade",
    osversion: str = NEW,
    maxunavailable: int = 2,
    nodeselector: Any = UNSET,
    executionmode: str | None = None,
    timeinterval: int | None = 0,
    timewindow: dict[str, str] | None = None,
    sysconfigs: dict[str, Any] | None = None,
    upgradeconfigs: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    namespace: str = "default",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "opstype": opstype,
        "osversion": osversion,
        "maxunavailable": maxunavailable,
        "imagetype": "disk" if opstype == "upgrade" else "",
        "imageurl": "https://images.test/kubeos.img" if opstype == "upgrade" else "",
        "checksum": CHECKSUM if opstype == "upgrade" else "",
        "cacert": "ca.crt" if opstype == "upgrade" else "",
        "containerimage": "",
        "flagSafe": False,
        "mtls": False,
        "evictpodforce": False,
    }
    if nodeselector is not UNSET:
        spec["nodeselector"] = nodeselector
    if executionmode is not None:
        spec["executionmode"] = executionmode
    if timeinterval is not None:
        spec["timeinterval"] = timeinterval
    if timewindow is not None:
        spec["timewindow"] = timewindow
    if sysconfigs is not None:
        spec["sysconfigs"] = sysconfigs
    if upgradeconfigs is not None:
        spec["upgradeconfigs"] = upgradeconfigs
    obj: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "OS",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or f"uid-{name}",
            "generation": generation,
            "creationTimestamp": created,
            "resourceVersion": "1",
        },
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return obj


def node(
    name: str,
    *,
    version: str = OLD,
    selector: Any = UNSET,
    role: str | None = None,
) -> dict[str, Any]:
    labels: dict[str, str] = {"kubernetes.io/hostname": name}
    if selector is not UNSET:
        labels[NODE_SELECTOR_LABEL] = selector
    if role:
        labels[f"node-role.kubernetes.io/{role}"] = ""
    return {
        "metadata": {"name": name, "labels": labels, "resourceVersion": "1"},
        "status": {"nodeInfo": node_info(version)},
    }


def node_info(os_image: str) -> dict[str, str]:
    """A complete node.status.nodeInfo (the API validates every required field)."""
    return {
        "architecture": "amd64",
        "bootID": "boot-1",
        "containerRuntimeVersion": "containerd://1.6.20",
        "kernelVersion": "5.10.0",
        "kubeProxyVersion": "v1.30.0",
        "kubeletVersion": "v1.30.0",
        "machineID": "machine-1",
        "operatingSystem": "linux",
        "osImage": os_image,
        "systemUUID": "uuid-1",
    }


def osi(
    name: str,
    *,
    nodestatus: str = "idle",
    dispatch: str = "",
    phase: str = "",
    status_dispatch: str | None = None,
    reason: str = "",
    sysversion: str | None = None,
    upversion: str | None = None,
    namespace: str = "default",
) -> dict[str, Any]:
    status: dict[str, Any] = {"dispatch": dispatch if status_dispatch is None else status_dispatch}
    if phase:
        status["phase"] = phase
    if reason:
        status["reason"] = reason
    if sysversion is not None:
        status["sysconfigs"] = {"version": sysversion}
    if upversion is not None:
        status["upgradeconfigs"] = {"version": upversion}
    return {
        "apiVersion": API_VERSION,
        "kind": "OSInstance",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "5"},
        "spec": {"nodestatus": nodestatus, "dispatch": dispatch},
        "status": status,
    }


def workers(n: int, **kw: Any) -> list[dict[str, Any]]:
    return [node(f"n{i}", **kw) for i in range(1, n + 1)]
