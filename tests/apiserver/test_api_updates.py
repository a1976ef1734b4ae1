"""PUT/PATCH semantics: stale resourceVersion conflicts, the three patch types, the status
subresource split and generation (what G2's optimistic retries rely on)."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubeos.sim.apiserver import ApiServer
from tests.apiserver.conftest import GROUP, VERSION, node, osinstance, pod

OSI = (GROUP, VERSION, "default", "osinstances")


def test_replace_with_stale_resource_version_is_409(core: client.CoreV1Api) -> None:
    first = core.create_node(node("n1"))
    core.patch_node("n1", {"metadata": {"labels": {"a": "1"}}})
    first.metadata.labels = {"b": "2"}
    with pytest.raises(ApiException) as err:
        core.replace_node("n1", first)
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "Conflict"
    fresh = core.read_node("n1")
    fresh.metadata.labels = {"b": "2"}
    assert core.replace_node("n1", fresh).metadata.labels == {"b": "2"}


def test_replace_without_resource_version_is_unconditional(core: client.CoreV1Api) -> None:
    core.create_node(node("n1"))
    replaced = core.replace_node("n1", node("n1", labels={"x": "y"}))
    assert replaced.metadata.labels == {"x": "y"}


def test_patch_carrying_a_stale_resource_version_is_409(custom, core) -> None:
    created = custom.create_namespaced_custom_object(*OSI, osinstance("n1"))
    stale = created["metadata"]["resourceVersion"]
    custom.patch_namespaced_custom_object(*OSI, "n1", {"spec": {"nodestatus": "upgrade"}})
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            *OSI, "n1", {"metadata": {"resourceVersion": stale}, "spec": {"nodestatus": "idle"}}
        )
    assert err.value.status == 409
    created = core.create_node(node("n1"))
    stale = created.metadata.resource_version
    core.patch_node("n1", {"metadata": {"labels": {"a": "1"}}})
    with pytest.raises(ApiException) as err:  # strategic merge patch
        core.patch_node("n1", {"metadata": {"resourceVersion": stale, "labels": {"a": "2"}}})
    assert err.value.status == 409
    with pytest.raises(ApiException) as err:  # JSON patch
        core.patch_node(
            "n1",
            [
                {"op": "replace", "path": "/metadata/resourceVersion", "value": stale},
                {"op": "add", "path": "/metadata/labels/a", "value": "3"},
            ],
        )
    assert err.value.status == 409
    assert core.read_node("n1").metadata.labels == {"a": "1"}


def test_merge_patch_rfc7386(custom) -> None:
    custom.create_namespaced_custom_object(
        *OSI, osinstance("n1", sysconfigs={"version": "v1", "configs": [{"model": "a"}]})
    )
    out = custom.patch_namespaced_custom_object(
        *OSI,
        "n1",
        {
            "spec": {
                "sysconfigs": {"version": None, "configs": [{"model": "b"}]},
                "osversion": "KubeOS 2",
            }
        },
    )
    assert out["spec"]["sysconfigs"] == {"configs": [{"model": "b"}]}
    assert out["spec"]["osversion"] == "KubeOS 2"


def test_strategic_merge_patch_merges_keyed_lists(api: ApiServer, core) -> None:
    api.create("pods", pod("p1"))
    core.patch_namespaced_pod_status(
        "p1",
        "default",
        {"status": {"conditions": [{"type": "DisruptionTarget", "status": "True"}]}},
    )
    conditions = api.get("pods", "p1")["status"]["conditions"]
    assert [c["type"] for c in conditions] == ["Ready", "DisruptionTarget"]
    core.patch_namespaced_pod_status(
        "p1", "default", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    )
    conditions = api.get("pods", "p1")["status"]["conditions"]
    assert conditions[0] == {"type": "Ready", "status": "False"}
    core.patch_namespaced_pod_status(
        "p1",
        "default",
        {"status": {"conditions": [{"type": "DisruptionTarget", "$patch": "delete"}]}},
    )
    assert [c["type"] for c in api.get("pods", "p1")["status"]["conditions"]] == ["Ready"]


def test_strategic_merge_patch_on_custom_resource_is_415(custom, api_client) -> None:
    custom.create_namespaced_custom_object(*OSI, osinstance("n1"))
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            *OSI, "n1", {"spec": {}}, _content_type="application/strategic-merge-patch+json"
        )
    assert err.value.status == 415


def test_json_patch_rfc6902(core: client.CoreV1Api) -> None:
    core.create_node(node("n1", labels={"a": "1", "b": "2"}))
    out = core.patch_node(
        "n1",
        [
            {"op": "test", "path": "/metadata/labels/a", "value": "1"},
            {"op": "remove", "path": "/metadata/labels/b"},
            {
                "op": "add",
                "path": "/metadata/labels/upgrade.openeuler.org~1node-selector",
                "value": "x",
            },
            {"op": "add", "path": "/spec/taints", "value": []},
            {"op": "add", "path": "/spec/taints/-", "value": {"key": "k", "effect": "NoSchedule"}},
            {"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/c"},
            {"op": "move", "from": "/metadata/labels/c", "path": "/metadata/labels/d"},
        ],
    )
    assert out.metadata.labels == {"a": "1", "upgrade.openeuler.org/node-selector": "x", "d": "1"}
    assert out.spec.taints[0].key == "k"
    with pytest.raises(ApiException) as err:
        core.patch_node("n1", [{"op": "test", "path": "/metadata/labels/a", "value": "2"}])
    assert err.value.status == 422


def test_status_subresource_split_and_generation(custom) -> None:
    created = custom.create_namespaced_custom_object(*OSI, osinstance("n1"))
    assert created["metadata"]["generation"] == 1
    # the main endpoint ignores status...
    out = custom.patch_namespaced_custom_object(
        *OSI, "n1", {"status": {"phase": "done"}, "metadata": {"labels": {"a": "b"}}}
    )
    assert "status" not in out and out["metadata"]["labels"] == {"a": "b"}
    assert out["metadata"]["generation"] == 1  # metadata changes do not bump generation
    # ...and /status ignores everything but status
    out = custom.patch_namespaced_custom_object_status(
        *OSI, "n1", {"status": {"phase": "done"}, "spec": {"nodestatus": "upgrade"}}
    )
    assert out["status"] == {"phase": "done"} and out["spec"]["nodestatus"] == "idle"
    assert out["metadata"]["generation"] == 1
    out = custom.patch_namespaced_custom_object(*OSI, "n1", {"spec": {"nodestatus": "upgrade"}})
    assert out["metadata"]["generation"] == 2 and out["status"] == {"phase": "done"}
    # replace of the status subresource, with a stale version -> 409
    stale = dict(out)
    custom.patch_namespaced_custom_object_status(*OSI, "n1", {"status": {"phase": "failed"}})
    stale["status"] = {"phase": "rebooting"}
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object_status(*OSI, "n1", stale)
    assert err.value.status == 409


def test_server_managed_metadata_cannot_be_overwritten(custom) -> None:
    created = custom.create_namespaced_custom_object(*OSI, osinstance("n1"))
    body = dict(created)
    body["metadata"] = {
        **created["metadata"],
        "uid": "forged",
        "generation": 99,
        "creationTimestamp": "2000-01-01T00:00:00Z",
    }
    body["spec"] = {"nodestatus": "config"}
    out = custom.replace_namespaced_custom_object(*OSI, "n1", body)
    assert out["metadata"]["uid"] == created["metadata"]["uid"]
    assert out["metadata"]["generation"] == 2
    assert out["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


def test_noop_write_keeps_resource_version(core: client.CoreV1Api) -> None:
    created = core.create_node(node("n1", labels={"a": "b"}))
    again = core.patch_node("n1", {"metadata": {"labels": {"a": "b"}}})
    assert again.metadata.resource_version == created.metadata.resource_version


def test_cordon_is_a_strategic_merge_patch_of_spec(core: client.CoreV1Api) -> None:
    core.create_node(node("n1"))
    out = core.patch_node("n1", {"spec": {"unschedulable": True}})
    assert out.spec.unschedulable is True
    assert out.metadata.generation == 2
