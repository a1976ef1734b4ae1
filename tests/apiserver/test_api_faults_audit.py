"""Fault injection (G2 retry tests) and the audit log the deployment's RBAC is derived from."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from kubeos.kube.retry import retry_call
from kubeos.sim.apiserver import ApiServer, AuditRecord
from tests.apiserver.conftest import GROUP, VERSION, node, osinstance, pod

OSI = (GROUP, VERSION, "default", "osinstances")


def test_next_n_matching_requests_fail(api: ApiServer, core) -> None:
    api.create("nodes", node("n1"))
    fault = api.inject_fault("get", "nodes", 500, count=2)
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            core.read_node("n1")
        assert err.value.status == 500
        assert json.loads(err.value.body)["reason"] == "InternalError"
    assert fault.remaining == 0
    assert core.read_node("n1").metadata.name == "n1"


def test_faults_match_verb_resource_and_subresource(api: ApiServer, core, custom) -> None:
    custom.create_namespaced_custom_object(*OSI, osinstance("n1"))
    api.create("nodes", node("n1"))
    api.inject_fault("patch", "osinstances", 409, subresource="status")
    core.patch_node("n1", {"spec": {"unschedulable": True}})  # other resource: untouched
    custom.patch_namespaced_custom_object(*OSI, "n1", {"spec": {"nodestatus": "config"}})
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object_status(*OSI, "n1", {"status": {"phase": "done"}})
    assert err.value.status == 409
    custom.patch_namespaced_custom_object_status(*OSI, "n1", {"status": {"phase": "done"}})


def test_429_carries_retry_after(api: ApiServer, core) -> None:
    api.create("nodes", node("n1"))
    api.inject_fault("patch", "nodes", 429, retry_after=2)
    with pytest.raises(ApiException) as err:
        core.patch_node("n1", {"spec": {"unschedulable": True}})
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "2"


def test_urllib3_itself_retries_a_get_answered_429_with_retry_after(api: ApiServer, core) -> None:
    """Worth knowing for G2 tests: idempotent requests never show such a 429 to our code."""
    api.create("nodes", node("n1"))
    api.inject_fault("get", "nodes", 429, retry_after=0)
    assert core.read_node("n1").metadata.name == "n1"
    assert [a.verb for a in api.audit] == ["get", "get"]


def test_retry_call_rides_out_injected_faults(api: ApiServer, core) -> None:
    """G2: the product's retry policy against real 429/500/409 answers."""
    api.create("nodes", node("n1"))
    api.inject_fault("patch", "nodes", 429, retry_after=0)
    api.inject_fault("patch", "nodes", 500)
    api.inject_fault("patch", "nodes", 409)
    slept: list[float] = []
    out = retry_call(
        lambda: core.patch_node("n1", {"spec": {"unschedulable": True}}),
        what="cordon n1",
        sleep=slept.append,
        base_delay=0.001,
    )
    assert out.spec.unschedulable is True
    assert len(slept) == 3
    assert [a.verb for a in api.audit] == ["patch"] * 4


def test_faults_on_eviction_and_watch(api: ApiServer, core) -> None:
    api.create("pods", pod("p1"))
    api.inject_fault("create", "pods", 429, subresource="eviction")
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod_eviction(
            "p1", "default", client.V1Eviction(metadata=client.V1ObjectMeta(name="p1"))
        )
    assert err.value.status == 429
    api.inject_fault("watch", "pods", 503)
    with pytest.raises(ApiException) as err:
        list(watch.Watch().stream(core.list_namespaced_pod, "default", timeout_seconds=1))
    assert err.value.status == 503


def test_audit_records_every_request_in_rbac_terms(api: ApiServer, api_client) -> None:
    core = client.CoreV1Api(api.api_client(user_agent="kubeos-agent/0.1.0"))
    custom = client.CustomObjectsApi(api.api_client(user_agent="kubeos-operator/0.1.0"))
    leases = client.CoordinationV1Api(api.api_client(user_agent="kubeos-operator/0.1.0"))
    api.create("nodes", node("n1"))
    api.create("pods", pod("p1"))
    core.read_node("n1")
    core.patch_node("n1", {"spec": {"unschedulable": True}})
    core.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1")
    core.create_namespaced_pod_eviction(
        "p1", "default", client.V1Eviction(metadata=client.V1ObjectMeta(name="p1"))
    )
    custom.create_namespaced_custom_object(*OSI, osinstance("n1"))
    custom.replace_namespaced_custom_object_status(
        *OSI, "n1", {**osinstance("n1"), "status": {"phase": "done"}}
    )
    list(
        watch.Watch().stream(
            custom.list_cluster_custom_object, GROUP, VERSION, "os", timeout_seconds=1
        )
    )
    with pytest.raises(ApiException):
        leases.read_namespaced_lease("kubeos-operator", "kube-system")
    custom.delete_namespaced_custom_object(*OSI, "n1")
    agent, op = "kubeos-agent/0.1.0", "kubeos-operator/0.1.0"
    assert api.audit == [
        AuditRecord(agent, "get", "", "v1", "nodes", "", "", "n1"),
        AuditRecord(agent, "patch", "", "v1", "nodes", "", "", "n1"),
        AuditRecord(agent, "list", "", "v1", "pods", "", "", ""),
        AuditRecord(agent, "create", "", "v1", "pods", "eviction", "default", "p1"),
        AuditRecord(op, "create", GROUP, VERSION, "osinstances", "", "default", ""),
        AuditRecord(op, "update", GROUP, VERSION, "osinstances", "status", "default", "n1"),
        AuditRecord(op, "watch", GROUP, VERSION, "os", "", "", ""),
        AuditRecord(
            op, "get", "coordination.k8s.io", "v1", "leases", "", "kube-system", "kubeos-operator"
        ),
        AuditRecord(op, "delete", GROUP, VERSION, "osinstances", "", "default", "n1"),
    ]
    api.clear_audit()
    assert api.audit == []


def test_a_slow_api_trips_the_client_timeout_then_answers(api: ApiServer, core) -> None:
    import urllib3

    api.create("nodes", node("n1"))
    api.inject_delay("get", "nodes", 1.0)
    cfg = client.Configuration()
    cfg.host, cfg.retries = api.url, False
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        client.CoreV1Api(client.ApiClient(cfg)).read_node("n1", _request_timeout=0.2)
    assert core.read_node("n1").metadata.name == "n1"  # the delay was used up
    api.inject_fault("get", "nodes", 503, delay=0.2)
    with pytest.raises(ApiException) as err:
        core.read_node("n1")
    assert err.value.status == 503
