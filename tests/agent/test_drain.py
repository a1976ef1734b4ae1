"""U4 drain through the Eviction API against the API stand-in (PDBs evaluated by it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kubeos.agent.drain import Drainer, DrainError, DrainPolicy
from kubeos.agent.loop import agent_api_client
from kubeos.sim.apiserver import ApiServer

NODE = "node-1"


@pytest.fixture
def api() -> Iterator[ApiServer]:
    with ApiServer() as server:
        server.create("nodes", {"metadata": {"name": NODE}, "spec": {}})
        server.create("nodes", {"metadata": {"name": "node-2"}, "spec": {}})
        yield server


def pod(
    api: ApiServer,
    name: str,
    *,
    node: str = NODE,
    owner: str | None = "ReplicaSet",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> None:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "labels": labels or {},
        "annotations": annotations or {},
    }
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": owner, "name": "o", "uid": "u", "controller": True}
        ]
    api.create(
        "pods",
        {
            "metadata": meta,
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        },
    )


def budget(api: ApiServer, min_available: int, app: str = "web") -> None:
    api.create(
        "poddisruptionbudgets",
        {
            "metadata": {"name": app, "namespace": "default"},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}},
        },
    )


def names(api: ApiServer) -> set[str]:
    return {p["metadata"]["name"] for p in api.list("pods")}


def drainer(api: ApiServer) -> Drainer:
    return Drainer(agent_api_client(server=api.url), NODE)


def test_cordon_and_uncordon(api: ApiServer) -> None:
    d = drainer(api)
    d.cordon()
    assert api.get("nodes", NODE, "")["spec"]["unschedulable"] is True
    d.uncordon()
    assert api.get("nodes", NODE, "")["spec"]["unschedulable"] is False


def test_evicts_through_the_eviction_api_and_skips_daemonset_and_mirror_pods(
    api: ApiServer,
) -> None:
    pod(api, "web-1", labels={"app": "web"})
    pod(api, "exporter", owner="DaemonSet")
    pod(api, "static-etcd", owner=None, annotations={"kubernetes.io/config.mirror": "abc"})
    pod(api, "elsewhere", node="node-2")
    result = drainer(api).drain(DrainPolicy(timeout=2))
    assert result.evicted == ["default/web-1"] and result.deleted == []
    assert sorted(result.skipped) == [
        "default/exporter (DaemonSet)",
        "default/static-etcd (mirror pod)",
    ]
    assert names(api) == {"exporter", "static-etcd", "elsewhere"}
    evictions = [r for r in api.audit if r.subresource == "eviction"]
    assert evictions and all(r.user_agent.startswith("kubeos-agent/") for r in evictions)
    assert not any(r.verb == "delete" and r.resource == "pods" for r in api.audit)


def test_budget_blocking_past_the_timeout_fails_without_force(api: ApiServer) -> None:
    pod(api, "web-1", labels={"app": "web"})
    pod(api, "web-2", labels={"app": "web"})
    budget(api, min_available=2)
    started = time.monotonic()
    with pytest.raises(DrainError, match=r"PodDisruptionBudget.*evictpodforce"):
        drainer(api).drain(DrainPolicy(timeout=1.0, backoff=0.1))
    assert time.monotonic() - started >= 1.0
    assert names(api) == {"web-1", "web-2"}  # nothing removed
    assert sum(r.subresource == "eviction" for r in api.audit) >= 4  # retried (429s)


def test_budget_blocking_past_the_timeout_deletes_with_evictpodforce(api: ApiServer) -> None:
    pod(api, "web-1", labels={"app": "web"})
    budget(api, min_available=1)
    result = drainer(api).drain(DrainPolicy(force=True, timeout=0.5, backoff=0.1))
    assert result.deleted == ["default/web-1"] and result.evicted == []
    assert names(api) == set()


def test_eviction_retries_until_the_budget_allows_it(api: ApiServer) -> None:
    """A replacement becoming ready elsewhere frees the budget: evicted, not deleted."""
    pod(api, "web-1", labels={"app": "web"})
    budget(api, min_available=1)
    timer = threading.Timer(0.6, lambda: pod(api, "web-new", node="node-2", labels={"app": "web"}))
    timer.start()
    try:
        result = drainer(api).drain(DrainPolicy(force=True, timeout=10, backoff=0.1))
    finally:
        timer.cancel()
    assert result.evicted == ["default/web-1"] and result.deleted == []
    assert names(api) == {"web-new"}


def test_pod_without_controller_is_refused_without_force(api: ApiServer) -> None:
    pod(api, "bare", owner=None)
    pod(api, "web-1", labels={"app": "web"})
    with pytest.raises(DrainError, match=r"default/bare.*evictpodforce"):
        drainer(api).drain(DrainPolicy(timeout=1))
    assert names(api) == {"bare", "web-1"}  # refused before anything was evicted


def test_pod_without_controller_is_deleted_with_force(api: ApiServer) -> None:
    pod(api, "bare", owner=None)
    result = drainer(api).drain(DrainPolicy(force=True, timeout=1))
    assert result.deleted == ["default/bare"]
    assert names(api) == set()


def test_waiting_for_a_slow_pod_to_go_is_bounded_and_eases_off(api: ApiServer) -> None:
    """An evicted pod held by a finalizer (a slow kubelet): the drain waits at most the
    drain timeout for it, looking less and less often, then goes on."""
    pod(api, "slow")
    p = api.get("pods", "slow")
    p["metadata"]["finalizers"] = ["example.com/hold"]
    api.replace("pods", p)
    d = drainer(api)
    api.clear_audit()
    start = time.monotonic()
    result = d.drain(DrainPolicy(force=False, timeout=2.0))
    elapsed = time.monotonic() - start
    assert result.evicted == ["default/slow"]
    assert 1.5 <= elapsed < 4.0
    lists = [r for r in api.audit if r.verb == "list" and r.resource == "pods"]
    assert len(lists) <= 8  # 0.2 s growing to 2 s, not every 0.2 s
