"""Seeding the API stand-in and waiting on it, shared by the operator's cluster tests."""

from __future__ import annotations

import time
from typing import Any

from kubeos.sim.apiserver import ApiServer
from tests.operator import fakeagent
from tests.operator.builders import node, os_obj


def seed(api: ApiServer, count: int, **os_kw: Any) -> dict[str, Any]:
    for i in range(1, count + 1):
        api.create("nodes", node(f"n{i}"))
    api.create("nodes", node("cp", role="control-plane"))
    obj = os_obj(**os_kw)
    for key in ("uid", "generation", "creationTimestamp", "resourceVersion"):
        obj["metadata"].pop(key)
    return api.create("os", obj)


def wait_busy(api: ApiServer, count: int, timeout: float = 10.0) -> list[str]:
    return api.wait_for(
        "osinstances",
        lambda objs: (b := fakeagent.busy(api)) and len(b) == count and b,
        "default",
        timeout,
    )


def os_status(api: ApiServer, name: str = "os-a") -> dict[str, Any]:
    return api.get("os", name).get("status") or {}


def wait_os(api: ApiServer, pred, name: str = "os-a", timeout: float = 10.0) -> dict[str, Any]:
    return api.wait_for("os", lambda objs: next(
        (o["status"] for o in objs if o["metadata"]["name"] == name and pred(o.get("status")
                                                                               or {})), None),
        "default", timeout)


def events(api: ApiServer, reason: str | None = None) -> list[dict[str, Any]]:
    out = [e for e in api.list("events", "default") if reason in (None, e.get("reason"))]
    return sorted(out, key=lambda e: int(e["metadata"]["resourceVersion"]))


def wait_events(api: ApiServer, reason: str, count: int = 1) -> list[dict[str, Any]]:
    api.wait_for("events", lambda objs: len(events(api, reason)) >= count, "default", 10)
    settle()
    return events(api, reason)


def settle() -> None:
    time.sleep(0.4)  # several controller rounds (min_round_gap 0.05 s)
