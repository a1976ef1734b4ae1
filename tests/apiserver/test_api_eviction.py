"""pods/eviction with PodDisruptionBudgets (policy/v1): 429 when the budget forbids it."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubeos.sim.apiserver import ApiServer
from tests.apiserver.conftest import pod


def evict(core: client.CoreV1Api, name: str) -> None:
    core.create_namespaced_pod_eviction(
        name,
        "default",
        client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace="default")),
    )


def budget(api: ApiServer, name: str = "web", **spec: object) -> None:
    api.create(
        "poddisruptionbudgets",
        {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}},
    )


def names(api: ApiServer) -> list[str]:
    return [p["metadata"]["name"] for p in api.list("pods")]


def test_eviction_without_a_budget_deletes_the_pod(api: ApiServer, core) -> None:
    api.create("pods", pod("p1"))
    evict(core, "p1")
    assert names(api) == []


def test_eviction_of_a_missing_pod_is_404(core) -> None:
    with pytest.raises(ApiException) as err:
        evict(core, "ghost")
    assert err.value.status == 404


@pytest.mark.parametrize(
    "spec",
    [
        {"minAvailable": 2},
        {"minAvailable": "100%"},
        {"maxUnavailable": 0},
        {"maxUnavailable": "0%"},
    ],
)
def test_blocking_budget_is_429_and_keeps_the_pod(api: ApiServer, core, spec) -> None:
    api.create("pods", pod("p1", labels={"app": "web"}))
    api.create("pods", pod("p2", labels={"app": "web"}))
    budget(api, **spec)
    with pytest.raises(ApiException) as err:
        evict(core, "p1")
    assert err.value.status == 429
    body = json.loads(err.value.body)
    assert body["reason"] == "TooManyRequests"
    assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert names(api) == ["p1", "p2"]


@pytest.mark.parametrize(
    "spec",
    [
        {"minAvailable": 1},
        {"minAvailable": "50%"},
        {"maxUnavailable": 1},
        {"maxUnavailable": "50%"},
    ],
)
def test_budget_allows_one_disruption_then_blocks(api: ApiServer, core, spec) -> None:
    """The controller's scale keeps the evicted pod expected until it is replaced."""
    rs = api.create(
        "replicasets",
        {
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
        },
    )
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web",
        "uid": rs["metadata"]["uid"],
        "controller": True,
    }
    for name in ("p1", "p2"):
        p = pod(name, labels={"app": "web"})
        p["metadata"]["ownerReferences"] = [owner]
        api.create("pods", p)
    budget(api, **spec)
    evict(core, "p1")
    assert names(api) == ["p2"]
    with pytest.raises(ApiException) as err:
        evict(core, "p2")
    assert err.value.status == 429


def test_ownerless_pods_count_as_one_each_for_percentages(api: ApiServer, core) -> None:
    api.create("pods", pod("p1", labels={"app": "web"}))
    api.create("pods", pod("p2", labels={"app": "web"}))
    budget(api, maxUnavailable="50%")
    evict(core, "p1")
    evict(core, "p2")  # expected shrank with the pods: documented divergence from upstream
    assert names(api) == []


def test_unready_pods_do_not_count_as_healthy(api: ApiServer, core) -> None:
    api.create("pods", pod("p1", labels={"app": "web"}))
    api.create("pods", pod("p2", labels={"app": "web"}, ready=False))
    budget(api, minAvailable=1)
    with pytest.raises(ApiException) as err:  # only p1 is healthy
        evict(core, "p1")
    assert err.value.status == 429
    evict(core, "p2")  # an unhealthy pod may go while the budget holds
    assert names(api) == ["p1"]


def test_budget_for_other_pods_does_not_apply(api: ApiServer, core) -> None:
    api.create("pods", pod("p1", labels={"app": "db"}))
    budget(api, minAvailable="100%")
    evict(core, "p1")
    assert names(api) == []


def test_pending_and_finished_pods_are_evicted_without_a_check(api: ApiServer, core) -> None:
    api.create("pods", pod("p1", labels={"app": "web"}, ready=None, phase="Succeeded"))
    api.create("pods", pod("p2", labels={"app": "web"}, ready=None, phase="Pending"))
    budget(api, minAvailable=5)
    evict(core, "p1")
    evict(core, "p2")
    assert names(api) == []


def test_two_budgets_for_one_pod_is_500(api: ApiServer, core) -> None:
    api.create("pods", pod("p1", labels={"app": "web"}))
    budget(api, "a", maxUnavailable=1)
    budget(api, "b", maxUnavailable=1)
    with pytest.raises(ApiException) as err:
        evict(core, "p1")
    assert err.value.status == 500


def test_eviction_watchers_see_the_pod_deleted(api: ApiServer, core) -> None:
    api.create("pods", pod("p1"))
    rv = core.list_namespaced_pod("default").metadata.resource_version
    evict(core, "p1")
    from kubernetes import watch

    events = [
        e["type"]
        for e in watch.Watch().stream(
            core.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=1
        )
    ]
    assert events == ["DELETED"]
