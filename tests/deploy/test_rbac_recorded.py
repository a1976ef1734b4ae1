"""RBAC against a recorded run: the embedded cluster (real operator, real agent processes,
API stand-in that audits every request with the caller's user agent) upgrades two nodes
whose pods must be drained, then configures them. Every audited request of
kubeos-operator/* must be allowed by the operator's roles and every one of kubeos-agent/*
by the agent's - with the real namespaces and object names, which the static scan cannot
know (e.g. the Lease's resourceNames). The stand-in serves our CRDs (pruning, validation,
CEL), so the rollout only succeeds if everything both sides write is declared there; the
objects it leaves behind are checked against the CRDs once more by tests/deploy's own
validator.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeos import NODE_SELECTOR_LABEL
from kubeos.sim.apiserver import AuditRecord
from kubeos.sim.cluster import ClusterConfig, EmbeddedCluster

from .apicalls import Request
from .test_rbac import AGENT_SA, OPERATOR_SA, Grant, grants_of

pytestmark = pytest.mark.slow

CONFIG_VERSION = "2"
CRDS = Path(__file__).resolve().parents[2] / "deploy" / "crds"


def _pod(name: str, node: str, controlled: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "labels": {"app": "web"}}
    if controlled:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-6d4cf56db6",
                "uid": f"uid-{name}",
                "controller": True,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": node, "containers": [{"name": "web", "image": "nginx"}]},
        "status": {"phase": "Running"},
    }


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    missing = [t for t in ("mke2fs", "debugfs", "sfdisk") if shutil.which(t) is None]
    if not (shutil.which("grub-editenv") or shutil.which("grub2-editenv")):
        missing.append("grub-editenv")
    if missing:
        pytest.skip(f"the embedded cluster's disks need {', '.join(missing)} (scripts/setup)")
    workdir: Path = tmp_path_factory.mktemp("rbac-sim")
    config = ClusterConfig(nodes=2, labels={2: {NODE_SELECTOR_LABEL: "edge"}})
    cluster = EmbeddedCluster(workdir, config)
    # The stand-in then prunes and validates our custom resources with these CRDs (schema
    # and CEL rules) on every write, as a real API server would.
    installed = cluster.api.install_crds(*sorted(CRDS.glob("*.yaml")))
    assert len(installed) == 2
    with cluster:
        # Pods to drain (U4): one a controller recreates elsewhere (evicted), one nobody
        # manages (deleted, because evictpodforce is true).
        for i, node in enumerate(sorted(cluster.machines), 1):
            cluster.api.create("pods", _pod(f"web-{i}", node, controlled=True))
            cluster.api.create("pods", _pod(f"debug-{i}", node, controlled=False))
        cluster.apply_os(cluster.upgrade_spec(maxunavailable=1, nodeselector="all-label"))
        cluster.wait_rollout(timeout=180)
        spec = cluster.upgrade_spec(
            opstype="config",
            imagetype="",
            nodeselector="all-label",
            sysconfigs={
                "version": CONFIG_VERSION,
                "configs": [
                    {
                        "model": "kernel.sysctl.persist",
                        "configpath": "/etc/persist.conf",
                        "contents": [{"key": "user.max_user_namespaces", "value": "16384"}],
                    }
                ],
            },
        )
        cluster.apply_os(spec)
        cluster.api.wait_for(
            "osinstances",
            lambda items: (
                len(items) == 2
                and all(
                    (o.get("status") or {}).get("sysconfigs", {}).get("version") == CONFIG_VERSION
                    and o["spec"].get("nodestatus") == "idle"
                    for o in items
                )
            ),
            timeout=120,
        )
        yield {
            "audit": cluster.api.audit,
            "os": cluster.api.list("os"),
            "osinstances": cluster.api.list("osinstances"),
            "pods": cluster.api.list("pods"),
        }


def _request(rec: AuditRecord) -> Request:
    return Request(rec.verb, rec.api_group, rec.resource, rec.subresource, bool(rec.namespace))


def _refused(records: list[AuditRecord], grants: list[Grant]) -> list[str]:
    return sorted(
        {
            f"{rec.verb} {rec.api_group or 'core'}/{rec.resource}"
            f"{'/' + rec.subresource if rec.subresource else ''}"
            f" ns={rec.namespace or '-'} name={rec.name or '-'}"
            for rec in records
            if not any(
                g.allows(_request(rec), name=rec.name or None, namespace=rec.namespace or None)
                for g in grants
            )
        }
    )


@pytest.mark.parametrize(
    ("agent", "sa"), [("kubeos-operator/", OPERATOR_SA), ("kubeos-agent/", AGENT_SA)]
)
def test_every_recorded_request_is_allowed(
    recorded: dict[str, Any], agent: str, sa: tuple[str, str]
) -> None:
    records = [r for r in recorded["audit"] if r.user_agent.startswith(agent)]
    assert records, f"no request by {agent}* recorded"
    assert _refused(records, grants_of(sa)) == []


def test_the_run_exercised_the_drain(recorded: dict[str, Any]) -> None:
    """Otherwise the recording would not cover eviction and deletion."""
    verbs = {
        (r.verb, r.resource, r.subresource)
        for r in recorded["audit"]
        if r.user_agent.startswith("kubeos-agent/")
    }
    assert ("create", "pods", "eviction") in verbs
    assert ("delete", "pods", "") in verbs
    assert [p for p in recorded["pods"] if p["metadata"]["namespace"] == "shop"] == []


def test_nobody_else_is_recorded_under_our_user_agents(recorded: dict[str, Any]) -> None:
    agents = {r.user_agent.split("/")[0] for r in recorded["audit"]}
    assert {"kubeos-operator", "kubeos-agent"} <= agents


def test_objects_written_in_the_run_pass_the_crds(
    recorded: dict[str, Any], os_crd: Any, osinstance_crd: Any
) -> None:
    (os_obj,) = recorded["os"]
    assert os_obj["status"]["nodes"]["total"] == 2
    assert [str(e) for e in os_crd.errors(os_obj)] == []
    assert len(recorded["osinstances"]) == 2
    for obj in recorded["osinstances"]:
        assert [str(e) for e in osinstance_crd.errors(obj)] == [], obj["metadata"]["name"]
