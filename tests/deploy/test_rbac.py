"""RBAC covers every API call of the operator and the agent, and grants nothing else.

The calls are derived, never listed by hand: statically from the source (apicalls.py maps
each use of an official-client method to verb/group/resource through the client's own URL
templates; an unmappable use fails), and from a recorded run of the embedded cluster,
whose API stand-in audits every request with the caller's user agent.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from .apicalls import REPO, Request, closure, scan

DEPLOY = REPO / "deploy"
OWN = ("kubeos", "kubeos_")
OPERATOR_SA = ("kubeos-system", "kubeos-operator")
AGENT_SA = ("kubeos-system", "kubeos-agent")


def component_files(name: str) -> set[Path]:
    """A component's code: its packages, its CLI, and (agent) the plugins it loads."""
    if name == "operator":
        roots = [*REPO.joinpath("kubeos/operator").glob("*.py"), REPO / "kubeos/cli/operator.py"]
    else:
        roots = [
            *REPO.joinpath("kubeos/agent").glob("*.py"),
            REPO / "kubeos/cli/agent.py",
            *REPO.glob("plugins/*/kubeos_*/**/*.py"),
        ]
    return closure(roots, OWN)


@dataclass(frozen=True)
class Grant:
    rule: Mapping[str, Any]
    namespace: str | None  # None: a ClusterRole bound cluster-wide

    def allows(self, req: Request, name: str | None = None, namespace: str | None = None) -> bool:
        r = self.rule
        if self.namespace is not None and (
            not req.namespaced or (namespace is not None and namespace != self.namespace)
        ):
            return False
        if not ({"*", req.group} & set(r.get("apiGroups", []))):
            return False
        if not ({"*", req.resource_name} & set(r.get("resources", []))):
            return False
        if not ({"*", req.verb} & set(r.get("verbs", []))):
            return False
        names = r.get("resourceNames")
        if names:
            # create cannot be limited by name; a name we do not know (static analysis)
            # is checked by the recorded run instead.
            return req.verb != "create" and (name is None or name in names)
        return True


def rbac_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(DEPLOY.joinpath("rbac").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def grants_of(sa: tuple[str, str]) -> list[Grant]:
    docs = rbac_documents()
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs}
    grants: list[Grant] = []
    for binding in docs:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if not any(
            s["kind"] == "ServiceAccount" and (s["namespace"], s["name"]) == sa
            for s in binding["subjects"]
        ):
            continue
        ref = binding["roleRef"]
        ns = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        role = roles.get((ref["kind"], ns if ref["kind"] == "Role" else None, ref["name"]))
        assert role is not None, f"{binding['metadata']['name']} refers to a missing {ref}"
        grants += [Grant(rule, ns) for rule in role["rules"]]
    return grants


def static_requests(name: str) -> tuple[set[Request], list[str]]:
    uses, problems = scan(component_files(name))
    return {r for u in uses for r in u.requests}, problems


@pytest.mark.parametrize(("name", "sa"), [("operator", OPERATOR_SA), ("agent", AGENT_SA)])
def test_every_call_in_the_code_is_granted(name: str, sa: tuple[str, str]) -> None:
    requests, problems = static_requests(name)
    assert problems == [], "API uses the RBAC derivation cannot map"
    assert requests, f"no API call found in the {name}: the scan is broken"
    grants = grants_of(sa)
    missing = sorted(str(r) for r in requests if not any(g.allows(r) for g in grants))
    assert missing == []


@pytest.mark.parametrize(("name", "sa"), [("operator", OPERATOR_SA), ("agent", AGENT_SA)])
def test_nothing_is_granted_that_no_call_uses(name: str, sa: tuple[str, str]) -> None:
    """Least privilege: every (verb, resource) of the roles is needed by some call."""
    requests, _ = static_requests(name)
    unused = []
    for grant in grants_of(sa):
        r = grant.rule
        for group in r["apiGroups"]:
            for resource in r["resources"]:
                for verb in r["verbs"]:
                    assert "*" not in (group, resource, verb), f"wildcard in {r}"
                    resource_, _, sub = resource.partition("/")
                    if not any(
                        (q.verb, q.group, q.resource, q.subresource)
                        == (verb, group, resource_, sub)
                        for q in requests
                    ):
                        unused.append(f"{verb} {group or 'core'}/{resource}")
    assert unused == []


def test_roles_sit_in_the_namespace_the_components_work_in() -> None:
    """OS, OSInstance, Lease and Events live in KUBEOS_NAMESPACE of both workloads."""
    env = {}
    for path in ("operator/deployment.yaml", "agent/daemonset.yaml"):
        (workload,) = [d for d in yaml.safe_load_all((DEPLOY / path).read_text()) if d]
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        env[path] = {e["name"]: e.get("value") for e in container["env"]}["KUBEOS_NAMESPACE"]
    namespaces = {
        d["metadata"]["namespace"] for d in rbac_documents() if d["kind"] in ("Role", "RoleBinding")
    }
    assert set(env.values()) == namespaces == {"default"}


def test_the_scan_fails_on_a_call_it_cannot_map(tmp_path: Path) -> None:
    """The guard against drift: new kinds of calls must fail, not pass unnoticed."""
    module = tmp_path / "newcode.py"
    module.write_text(
        textwrap.dedent(
            """
            from kubernetes import client

            class Thing:
                def __init__(self, api, plural):
                    self.core = client.CoreV1Api(api)
                    self.custom = client.CustomObjectsApi(api)
                    self.plural = plural

                def run(self, api):
                    self.core.frobnicate_node("n1")
                    self.custom.list_namespaced_custom_object("g", "v1", "ns", self.plural)
                    api.call_api("/api/v1/nodes", "GET")
                    self.core.read_node("n1")

            class Bounded(ApiClient):
                def call_api(self, *args, **kwargs):
                    return super().call_api(*args, **kwargs)  # forwards: not a new call

            def helper(events_api, core_api):
                events_api.create_namespaced_event("ns", {})  # core or events.k8s.io?
                core_api.delete_namespaced_pod("p", "ns")  # handed over: still found
            """
        )
    )
    uses, problems = scan([module])
    assert {u.method: [str(r) for r in u.requests] for u in uses} == {
        "read_node": ["get core/nodes (cluster-wide)"],
        "delete_namespaced_pod": ["delete core/pods (namespaced)"],
    }
    joined = "\n".join(problems)
    assert "create_namespaced_event on 'events_api' is ambiguous" in joined
    assert "CoreV1Api.frobnicate_node is not a known API method" in joined
    assert "group/plural must be constants" in joined
    assert joined.count("raw call_api") == 1  # the forwarding override is not one


# -- the ValidatingAdmissionPolicy that does what RBAC cannot -------------------------------


def policy() -> dict[str, Any]:
    docs = yaml.safe_load_all((DEPLOY / "admission/agent-node-restriction.yaml").read_text())
    return next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicy")


AGENT_USER = "system:serviceaccount:kubeos-system:kubeos-agent"
NODE_KEY = "authentication.kubernetes.io/node-name"


def admit(
    user: str,
    bound_node: str | None,
    resource: str,
    operation: str,
    obj: dict[str, Any] | None,
    old: dict[str, Any] | None,
) -> list[str]:
    """Evaluate the policy's CEL as the API server would; the messages of failed checks."""
    spec = policy()
    rules = spec["spec"]
    env = celpy.Environment()
    extra = {NODE_KEY: [bound_node]} if bound_node else {}
    base = {
        "request": celpy.json_to_cel(
            {
                "userInfo": {"username": user, "extra": extra},
                "resource": {"resource": resource},
                "operation": operation,
            }
        ),
        "object": celpy.json_to_cel(obj),
        "oldObject": celpy.json_to_cel(old),
    }

    def run(expr: str, activation: dict[str, Any]) -> Any:
        result = env.program(env.compile(expr)).evaluate(activation)
        assert not isinstance(result, celpy.CELEvalError), f"{expr}: {result}"
        return result

    matched = all(run(c["expression"], base) for c in rules.get("matchConditions", []))
    if not matched:
        return []
    variables: dict[str, Any] = {}
    for var in rules.get("variables", []):
        variables[var["name"]] = run(
            var["expression"], {**base, "variables": celpy.json_to_cel(variables)}
        )
    activation = {**base, "variables": celpy.json_to_cel(variables)}
    refused = []
    for check in rules["validations"]:
        if not run(check["expression"], activation):
            if "messageExpression" in check:
                refused.append(str(run(check["messageExpression"], activation)))
            else:
                refused.append(check["message"])
    return refused


def node(name: str, unschedulable: bool = False, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        "spec": {"unschedulable": unschedulable},
    }


def pod(on: str | None) -> dict[str, Any]:
    spec = {"nodeName": on} if on else {}
    return {"metadata": {"name": "web-1", "namespace": "shop"}, "spec": spec}


def osinstance(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"nodestatus": "idle"}}


@pytest.mark.parametrize(
    ("resource", "operation", "obj", "old"),
    [
        ("nodes", "UPDATE", node("n1", True), node("n1")),
        ("nodes", "UPDATE", node("n1", False), node("n1", True)),
        ("pods", "DELETE", None, pod("n1")),
        ("osinstances", "CREATE", osinstance("n1"), None),
        ("osinstances", "UPDATE", osinstance("n1"), osinstance("n1")),
    ],
    ids=["cordon", "uncordon", "delete-own-pod", "create-osinstance", "update-osinstance"],
)
def test_policy_lets_an_agent_act_on_its_own_node(
    resource: str, operation: str, obj: Any, old: Any
) -> None:
    assert admit(AGENT_USER, "n1", resource, operation, obj, old) == []


@pytest.mark.parametrize(
    ("bound", "resource", "operation", "obj", "old", "says"),
    [
        ("n1", "nodes", "UPDATE", node("n2", True), node("n2"), "may not change nodes of node n2"),
        ("n1", "pods", "DELETE", None, pod("n2"), "may not change pods of node n2"),
        ("n1", "pods", "DELETE", None, pod(None), "may not change pods of node "),
        ("n1", "osinstances", "CREATE", osinstance("n2"), None, "osinstances of node n2"),
        ("n1", "osinstances", "UPDATE", osinstance("n2"), osinstance("n2"), "of node n2"),
        ("n1", "nodes", "UPDATE", node("n1", role="edge"), node("n1"), "labels or taints"),
        (None, "nodes", "UPDATE", node("n1", True), node("n1"), "token bound to its pod"),
    ],
    ids=[
        "other-node",
        "other-nodes-pod",
        "unscheduled-pod",
        "other-osinstance",
        "other-osinstance-update",
        "relabel-own-node",
        "unbound-token",
    ],
)
def test_policy_refuses_an_agent_touching_another_node(
    bound: str | None, resource: str, operation: str, obj: Any, old: Any, says: str
) -> None:
    refused = admit(AGENT_USER, bound, resource, operation, obj, old)
    assert any(says in m for m in refused), refused


def test_policy_leaves_everyone_else_alone() -> None:
    admin = "kubernetes-admin"
    assert admit(admin, None, "nodes", "UPDATE", node("n2", role="x"), node("n2")) == []
    operator = "system:serviceaccount:kubeos-system:kubeos-operator"
    assert admit(operator, None, "osinstances", "UPDATE", osinstance("n2"), None) == []


def test_policy_matches_the_agent_service_account_and_its_rbac() -> None:
    spec = policy()["spec"]
    ns, name = AGENT_SA
    assert f"system:serviceaccount:{ns}:{name}" in spec["matchConditions"][0]["expression"]
    covered = {
        (g, r, op)
        for rule in spec["matchConstraints"]["resourceRules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for op in rule["operations"]
    }
    # Every write the agent's RBAC allows is covered, except pods/eviction (see the file).
    to_admission = {"create": "CREATE", "update": "UPDATE", "patch": "UPDATE", "delete": "DELETE"}
    writes = {
        (g, r, to_admission[v])
        for grant in grants_of(AGENT_SA)
        for g in grant.rule["apiGroups"]
        for r in grant.rule["resources"]
        for v in grant.rule["verbs"]
        if v in to_admission and r not in ("pods/eviction", "events")
    }
    assert writes <= covered
