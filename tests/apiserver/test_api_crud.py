"""CRUD through the official client: codes, Status bodies, server-managed metadata."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubeos.sim.apiserver import ApiError, ApiServer
from tests.apiserver.conftest import GROUP, VERSION, node, osinstance


def test_create_get_list_delete_node(api: ApiServer, core: client.CoreV1Api) -> None:
    created = core.create_node(
        client.V1Node(metadata=client.V1ObjectMeta(name="n1", labels={"role": "worker"}))
    )
    assert created.kind == "Node" and created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.generation == 1
    rv = int(created.metadata.resource_version)

    got = core.read_node("n1")
    assert got.metadata.uid == created.metadata.uid
    listed = core.list_node()
    assert [n.metadata.name for n in listed.items] == ["n1"]
    assert int(listed.metadata.resource_version) >= rv

    status = core.delete_node("n1")
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"]["name"] == "n1"
    assert core.list_node().items == []


def test_get_missing_is_404_with_a_status_body(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.read_node("nope")
    assert err.value.status == 404
    body = json.loads(err.value.body)
    assert body["kind"] == "Status" and body["reason"] == "NotFound"
    assert body["code"] == 404 and '"nope" not found' in body["message"]


def test_create_twice_is_409_already_exists(core: client.CoreV1Api) -> None:
    core.create_node(node("n1"))
    with pytest.raises(ApiException) as err:
        core.create_node(node("n1"))
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "AlreadyExists"


def test_generate_name(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_event(
        "default",
        {
            "metadata": {"generateName": "os-sample."},
            "involvedObject": {"name": "x"},
            "reason": "Started",
            "message": "m",
        },
    )
    assert created.metadata.name.startswith("os-sample.")
    assert len(created.metadata.name) == len("os-sample.") + 5


def test_invalid_name_and_label_value_are_422(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.create_node(node("Upper_Case"))
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:
        core.create_node(node("n1", labels={"version": "KubeOS 1.0.1"}))
    assert err.value.status == 422
    assert "metadata.labels[version]" in json.loads(err.value.body)["message"]


def test_wrong_namespace_in_body_is_400(core: client.CoreV1Api) -> None:
    body = {"metadata": {"name": "p", "namespace": "other"}, "spec": {"containers": []}}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod("default", body)
    assert err.value.status == 400


def test_custom_objects_crud(custom: client.CustomObjectsApi) -> None:
    created = custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", "osinstances", osinstance("n1")
    )
    assert created["kind"] == "OSInstance" and created["metadata"]["namespace"] == "default"
    got = custom.get_namespaced_custom_object(GROUP, VERSION, "default", "osinstances", "n1")
    assert got["spec"]["nodestatus"] == "idle"
    assert (
        custom.list_namespaced_custom_object(GROUP, VERSION, "other", "osinstances")["items"] == []
    )
    everywhere = custom.list_cluster_custom_object(GROUP, VERSION, "osinstances")
    assert [o["metadata"]["name"] for o in everywhere["items"]] == ["n1"]
    assert everywhere["kind"] == "OSInstanceList"
    gone = custom.delete_namespaced_custom_object(GROUP, VERSION, "default", "osinstances", "n1")
    assert gone["metadata"]["name"] == "n1"  # custom resources answer with the object
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object(GROUP, VERSION, "default", "osinstances", "n1")
    assert err.value.status == 404


def test_leases_and_pdbs_and_events_v1(api_client: client.ApiClient) -> None:
    leases = client.CoordinationV1Api(api_client)
    lease = leases.create_namespaced_lease(
        "kube-system",
        client.V1Lease(
            metadata=client.V1ObjectMeta(name="kubeos-operator"),
            spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15),
        ),
    )
    lease.spec.holder_identity = "b"
    replaced = leases.replace_namespaced_lease("kubeos-operator", "kube-system", lease)
    assert replaced.spec.holder_identity == "b"

    policy = client.PolicyV1Api(api_client)
    pdb = policy.create_namespaced_pod_disruption_budget(
        "default",
        {"metadata": {"name": "b"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {}}}},
    )
    assert pdb.spec.min_available == 1

    events = client.EventsV1Api(api_client)
    ev = events.create_namespaced_event(
        "default",
        client.EventsV1Event(
            metadata=client.V1ObjectMeta(generate_name="n1."),
            event_time="2026-01-01T00:00:00.000000Z",
            reason="Upgrade",
            note="started",
            type="Normal",
            action="Upgrade",
            reporting_controller="kubeos",
            reporting_instance="op-1",
            regarding=client.V1ObjectReference(kind="Node", name="n1"),
        ),
    )
    listed = events.list_namespaced_event("default", field_selector="regarding.name=n1")
    assert [e.metadata.name for e in listed.items] == [ev.metadata.name]


def test_finalizers_hold_deletion_until_removed(api: ApiServer, custom) -> None:
    obj = osinstance("n1")
    obj["metadata"]["finalizers"] = ["kubeos/keep"]
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", "osinstances", obj)
    marked = custom.delete_namespaced_custom_object(GROUP, VERSION, "default", "osinstances", "n1")
    assert marked["metadata"]["deletionTimestamp"]
    assert api.get("osinstances", "n1")["metadata"]["deletionTimestamp"]
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", "osinstances", "n1", {"metadata": {"finalizers": None}}
    )
    assert api.list("osinstances") == []


def test_delete_precondition_on_stale_resource_version(core: client.CoreV1Api) -> None:
    created = core.create_node(node("n1"))
    core.patch_node("n1", {"metadata": {"labels": {"x": "y"}}})
    with pytest.raises(ApiException) as err:
        core.delete_node(
            "n1",
            body=client.V1DeleteOptions(
                preconditions=client.V1Preconditions(
                    resource_version=created.metadata.resource_version
                )
            ),
        )
    assert err.value.status == 409


def test_seed_helpers_bypass_http_and_audit(api: ApiServer, core: client.CoreV1Api) -> None:
    api.create("nodes", node("n1", labels={"a": "b"}))
    api.create("pods", {"metadata": {"name": "p"}, "spec": {"containers": []}})
    assert api.audit == []
    assert core.read_node("n1").metadata.labels == {"a": "b"}
    assert api.get("pods", "p")["metadata"]["namespace"] == "default"
    api.patch("nodes", "n1", {"status": {"phase": "x"}}, status=True)
    assert api.get("nodes", "n1", namespace="")["status"] == {"phase": "x"}


def test_list_pagination_with_limit_and_continue(core: client.CoreV1Api) -> None:
    for i in range(5):
        core.create_node(node(f"n{i}"))
    first = core.list_node(limit=2)
    assert [n.metadata.name for n in first.items] == ["n0", "n1"]
    assert first.metadata.remaining_item_count == 3
    second = core.list_node(limit=2, _continue=first.metadata._continue)
    assert [n.metadata.name for n in second.items] == ["n2", "n3"]
    third = core.list_node(limit=2, _continue=second.metadata._continue)
    assert [n.metadata.name for n in third.items] == ["n4"] and not third.metadata._continue


def test_discovery_and_kubeconfig(api: ApiServer, tmp_path) -> None:
    from kubernetes import config

    cfg = client.Configuration()
    config.load_kube_config(
        config_file=str(api.write_kubeconfig(tmp_path / "kubeconfig")), client_configuration=cfg
    )
    with client.ApiClient(cfg) as c:
        groups = client.ApisApi(c).get_api_versions()
        assert GROUP in [g.name for g in groups.groups]
        resources = client.CustomObjectsApi(c).get_api_resources(GROUP, VERSION)
        names = {r.name for r in resources.resources}
        assert {"os", "osinstances", "os/status", "osinstances/status"} <= names
        assert client.VersionApi(c).get_code().major == "1"


def test_objects_the_client_cannot_read_back_are_422(api: ApiServer, core) -> None:
    """A pod without containers is refused, as by a real server, not stored to break
    every typed list later."""
    request = urllib.request.Request(
        f"{api.url}/api/v1/namespaces/default/pods",
        data=json.dumps({"metadata": {"name": "p"}, "spec": {}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(request, timeout=5)
    assert raw.value.code == 422
    assert "containers" in json.loads(raw.value.read())["message"]
    core.create_node(node("n1"))
    with pytest.raises(ApiException) as err:
        core.patch_node("n1", {"spec": {"unschedulable": "yes"}})
    assert err.value.status == 422
    assert core.read_node("n1").spec.unschedulable is None
    with pytest.raises(ApiError) as seeded:
        api.create("pods", {"metadata": {"name": "p"}, "spec": {}})  # seeding checks too
    assert seeded.value.code == 422


def test_create_with_a_resource_version_is_refused_like_upstream(core) -> None:
    created = core.create_node(node("n1"))
    core.delete_node("n1")
    with pytest.raises(ApiException) as err:  # re-posting an object read back
        core.create_node(created)
    assert err.value.status == 500
    assert "resourceVersion should not be set" in err.value.body
    created.metadata.resource_version = None
    assert core.create_node(created).metadata.uid != created.metadata.uid


def test_delete_collection_with_a_selector(api: ApiServer, core) -> None:
    for name, app in (("a", "web"), ("b", "web"), ("c", "db")):
        body = {"metadata": {"name": name, "labels": {"app": app}}, "spec": {"containers": []}}
        api.create("pods", body)
    out = core.delete_collection_namespaced_pod("default", label_selector="app=web")
    assert out.kind == "PodList"  # the deleted objects, as upstream (the client types a Status)
    assert [p["metadata"]["name"] for p in api.list("pods")] == ["c"]
    assert api.audit[-1].verb == "deletecollection"


def test_dry_run_changes_nothing(api: ApiServer, core) -> None:
    created = core.create_node(node("n1"), dry_run="All")
    assert created.metadata.name == "n1" and api.list("nodes") == []
    core.create_node(node("n1"))
    rv = core.read_node("n1").metadata.resource_version
    core.patch_node("n1", {"metadata": {"labels": {"a": "b"}}}, dry_run="All")
    core.delete_node("n1", dry_run="All")
    assert core.read_node("n1").metadata.resource_version == rv


def test_namespaces_are_cluster_scoped_objects(core) -> None:
    core.create_namespace({"metadata": {"name": "kubeos-system"}})
    assert [n.metadata.name for n in core.list_namespace().items] == ["kubeos-system"]
    with pytest.raises(ApiException) as err:
        core.create_namespace({"metadata": {"name": "a.b"}})  # a DNS label, not a subdomain
    assert err.value.status == 422


def test_wait_for_predicates_may_call_the_api_over_http(api: ApiServer, core) -> None:
    """The predicate runs outside the store lock: an HTTP call inside cannot deadlock."""
    import threading

    threading.Timer(0.2, lambda: api.create("nodes", node("n1"))).start()
    found = api.wait_for("nodes", lambda objs: objs and core.read_node("n1"), timeout=5)
    assert found.metadata.name == "n1"
    with pytest.raises(TimeoutError):
        api.wait_for("nodes", lambda objs: len(objs) > 1, timeout=0.3)


def test_event_namespace_must_match_the_involved_object(core) -> None:
    def event(ns: str, involved_ns: str | None) -> dict:
        ref = {"kind": "OS", "name": "os-a"}
        if involved_ns is not None:
            ref["namespace"] = involved_ns
        return {
            "metadata": {"generateName": "os-a.", "namespace": ns},
            "involvedObject": ref,
            "reason": "Started",
            "message": "m",
        }

    core.create_namespaced_event("ops", event("ops", "ops"))
    core.create_namespaced_event("default", event("default", None))  # a Node's event
    for ns, involved in (("ops", "other"), ("ops", None)):
        with pytest.raises(ApiException) as err:
            core.create_namespaced_event(ns, event(ns, involved))
        assert err.value.status == 422
        assert "involvedObject.namespace" in json.loads(err.value.body)["message"]


def test_events_v1_need_their_required_fields(api_client) -> None:
    events = client.EventsV1Api(api_client)
    with pytest.raises(ApiException) as err:
        events.create_namespaced_event(
            "default",
            {
                "metadata": {"name": "e1"},
                "eventTime": "2026-01-01T00:00:00.000000Z",
                "reason": "Upgrade",
                "type": "Normal",
                "reportingController": "kubeos",
                "reportingInstance": "op-1",
            },
        )
    assert err.value.status == 422 and "action" in json.loads(err.value.body)["message"]
