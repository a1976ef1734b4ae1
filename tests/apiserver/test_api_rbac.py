"""RBAC enforced from the stored Roles/ClusterRoles/bindings (the project's deploy/rbac):
the agent's and operator's service-account tokens get exactly what their roles grant."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubeos.sim.apiserver import ApiServer
from kubeos.sim.apiserver import rbac as apirbac
from kubeos.sim.apiserver.audit import AuditRecord
from tests.apiserver.conftest import GROUP, VERSION, node, osinstance, pod

REPO = Path(__file__).resolve().parents[2]
RBAC = sorted((REPO / "deploy" / "rbac").glob("*.yaml"))
AGENT = "system:serviceaccount:kubeos-system:kubeos-agent"
OSI = (GROUP, VERSION, "default", "osinstances")


MANIFEST = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: agent}
rules:
  - {apiGroups: [""], resources: [nodes], verbs: [patch]}
  - {apiGroups: [""], resources: [pods], verbs: [list]}
  - {apiGroups: [""], resources: [pods/eviction], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: agent}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agent}
subjects: [{kind: ServiceAccount, name: kubeos-agent, namespace: kubeos-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: agent, namespace: default}
rules:
  - {apiGroups: [upgrade.openeuler.org], resources: [osinstances], verbs: [get, create]}
  - {apiGroups: [upgrade.openeuler.org], resources: [osinstances/status], verbs: [update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: agent, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: agent}
subjects: [{kind: ServiceAccount, name: kubeos-agent, namespace: kubeos-system}]
"""


@pytest.fixture
def rbac_api(tmp_path: Path) -> Iterator[ApiServer]:
    manifest = tmp_path / "rbac.yaml"
    manifest.write_text(MANIFEST)
    with ApiServer(authorize=True) as api:
        assert api.apply_manifests(manifest) == [
            "ClusterRole/agent",
            "ClusterRoleBinding/agent",
            "Role/agent",
            "RoleBinding/agent",
        ]
        yield api


def forbidden(call) -> dict:
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == 403
    return json.loads(err.value.body)


def test_a_service_account_gets_what_its_roles_grant_and_nothing_else(
    rbac_api: ApiServer,
) -> None:
    token = rbac_api.add_user(AGENT)
    admin = rbac_api.add_user("admin", admin=True)
    seed = client.CoreV1Api(rbac_api.api_client(token=admin))
    seed.create_node(node("n1"))
    seed.create_namespaced_pod("default", pod("p1"))
    agent_api = rbac_api.api_client("kubeos-agent/0.1", token=token)
    core, custom = client.CoreV1Api(agent_api), client.CustomObjectsApi(agent_api)

    core.patch_node("n1", {"spec": {"unschedulable": True}})  # cordon
    core.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1")
    core.create_namespaced_pod_eviction(
        "p1", "default", client.V1Eviction(metadata=client.V1ObjectMeta(name="p1"))
    )
    created = custom.create_namespaced_custom_object(*OSI, osinstance("n1"))
    created["status"] = {"phase": "done"}
    custom.replace_namespaced_custom_object_status(*OSI, "n1", created)

    body = forbidden(lambda: core.delete_node("n1"))
    assert body["reason"] == "Forbidden"
    assert f'User "{AGENT}" cannot delete resource "nodes"' in body["message"]
    forbidden(lambda: custom.delete_namespaced_custom_object(*OSI, "n1"))
    forbidden(lambda: custom.patch_namespaced_custom_object_status(*OSI, "n1", {"status": {}}))
    forbidden(lambda: core.list_namespaced_secret("default"))
    # the Role is in "default": the same resource elsewhere is not granted
    forbidden(
        lambda: custom.get_namespaced_custom_object(GROUP, VERSION, "other", "osinstances", "n1")
    )
    refused = [r for r in rbac_api.audit if r.user == AGENT and r.verb == "delete"]
    assert refused, "refused requests stay in the audit"


def test_the_projects_rbac_applies_and_keeps_the_agent_from_deleting_nodes() -> None:
    if not RBAC:
        pytest.skip("deploy/rbac has no manifests")
    with ApiServer(authorize=True) as api:
        applied = api.apply_manifests(*RBAC)
        assert any(a.startswith("ClusterRole/") for a in applied)
        api.create("nodes", node("n1"))
        core = client.CoreV1Api(api.api_client(token=api.add_user(AGENT)))
        forbidden(lambda: core.delete_node("n1"))


def test_rule_matching() -> None:
    def req(verb, resource, sub="", ns="default", name="x", group="", user="u") -> AuditRecord:
        return AuditRecord("ua", verb, group, "v1", resource, sub, ns, name, user)

    role = {
        "metadata": {"name": "r", "namespace": "default"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get"],
                "resourceNames": ["kubeos-operator"],
            },
            {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]},
        ],
    }
    users = [{"kind": "User", "name": "u"}]
    binding = {
        "metadata": {"name": "b", "namespace": "default"},
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": users,
    }

    def ok(r: AuditRecord) -> bool:
        return apirbac.allowed(r, [role], [], [binding], [])

    assert ok(req("create", "pods", "eviction"))
    assert not ok(req("create", "pods"))
    assert ok(req("get", "leases", group="coordination.k8s.io", name="kubeos-operator"))
    assert not ok(req("get", "leases", group="coordination.k8s.io", name="other"))
    assert not ok(req("list", "leases", group="coordination.k8s.io", name=""))
    assert ok(req("update", "nodes", "status", group=""))
    assert not ok(req("create", "pods", "eviction", ns="other"))
    assert not ok(req("create", "pods", "eviction", user="someone-else"))
    group_binding = {**binding, "subjects": [{"kind": "Group", "name": "system:serviceaccounts"}]}
    sa = "system:serviceaccount:kube-system:x"
    assert apirbac.allowed(
        req("create", "pods", "eviction", user=sa), [role], [], [group_binding], []
    )


def test_without_tokens_nobody_is_refused() -> None:
    with ApiServer(authorize=True) as api:  # anonymous callers: no identity, no RBAC
        client.CoreV1Api(api.api_client()).create_node(node("n1"))
