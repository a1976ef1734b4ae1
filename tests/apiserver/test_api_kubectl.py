"""The real kubectl against the stand-in: the spec's own commands (U8, os-cr.md), `kubectl
apply -k deploy/` and the samples, strict field validation, cordon. Skipped without kubectl."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from kubeos.sim.apiserver import ApiServer
from tests.apiserver.conftest import node

REPO = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


@pytest.fixture
def kubectl(api: ApiServer, tmp_path: Path):
    config = api.write_kubeconfig(tmp_path / "kubeconfig")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [KUBECTL, "--kubeconfig", str(config), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    return run


def test_spec_progress_commands(api: ApiServer, kubectl) -> None:
    """U8 and os-cr.md: node OS versions and OSInstance progress through custom-columns."""
    body = node("n1")
    info = dict.fromkeys(
        (
            "architecture",
            "bootID",
            "containerRuntimeVersion",
            "kernelVersion",
            "kubeProxyVersion",
            "kubeletVersion",
            "machineID",
            "operatingSystem",
            "systemUUID",
        ),
        "x",
    )
    body["status"] = {"nodeInfo": {**info, "osImage": "KubeOS 1.0.1"}}
    api.create("nodes", body)
    api.create(
        "osinstances", {"metadata": {"name": "n1"}, "spec": {"nodestatus": "upgrade"}, "status": {}}
    )
    api.patch("osinstances", "n1", {"status": {"sysconfigs": {"version": "v2"}}}, status=True)
    out = kubectl(
        "get", "nodes", "-o", "custom-columns=NAME:.metadata.name,OS:.status.nodeInfo.osImage"
    ).stdout
    assert out.split("\n")[1].split() == ["n1", "KubeOS", "1.0.1"]
    out = kubectl(
        "get",
        "osinstances",
        "-o",
        "custom-columns=NAME:.metadata.name,NODESTATUS:.spec.nodestatus,"
        "SYSCONFIG:status.sysconfigs.version,UPGRADECONFIG:status.upgradeconfigs.version",
    ).stdout
    assert out.split("\n")[1].split() == ["n1", "upgrade", "v2", "<none>"]


def test_apply_the_deployment_and_a_sample(api: ApiServer, kubectl) -> None:
    kubectl("apply", "-k", str(REPO / "deploy"))
    kinds = {
        r: [o["metadata"]["name"] for o in api.list(r)]
        for r in ("customresourcedefinitions", "clusterroles", "daemonsets", "deployments")
    }
    assert kinds["customresourcedefinitions"] == [
        "os.upgrade.openeuler.org",
        "osinstances.upgrade.openeuler.org",
    ]
    assert kinds["daemonsets"] and kinds["deployments"] and kinds["clusterroles"]
    sample = REPO / "deploy" / "samples" / "upgrade-disk.yaml"
    assert "created" in kubectl("apply", "-f", str(sample)).stdout
    assert "unchanged" in kubectl("apply", "-f", str(sample)).stdout
    got = json.loads(kubectl("get", "os", "os-sample", "-o", "json").stdout)
    assert got["spec"]["imagetype"] == "disk"


def test_strict_field_validation_refuses_unknown_fields(api: ApiServer, kubectl, tmp_path) -> None:
    api.install_crds(*sorted((REPO / "deploy" / "crds").glob("*.yaml")))
    obj = yaml.safe_load((REPO / "deploy" / "samples" / "upgrade-disk.yaml").read_text())
    obj["spec"]["imagtype"] = "disk"  # a typo
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(obj))
    done = kubectl("apply", "-f", str(bad), check=False)
    assert done.returncode != 0
    assert 'unknown field "spec.imagtype"' in done.stderr
    assert api.list("os") == []
    kubectl("apply", "--validate=false", "-f", str(bad))  # Ignore: pruned silently
    assert "imagtype" not in api.get("os", "os-sample")["spec"]


def test_cordon_and_label(api: ApiServer, kubectl) -> None:
    api.create("nodes", node("n1"))
    kubectl("cordon", "n1")
    kubectl("label", "node", "n1", "upgrade.openeuler.org/node-selector=edge")
    stored = api.get("nodes", "n1", "")
    assert stored["spec"]["unschedulable"] is True
    assert stored["metadata"]["labels"]["upgrade.openeuler.org/node-selector"] == "edge"
    assert {(a.verb, a.resource) for a in api.audit} >= {("get", "nodes"), ("patch", "nodes")}


def test_kubectl_get_prints_the_crd_columns(api: ApiServer, kubectl) -> None:
    api.install_crds(*sorted((REPO / "deploy" / "crds").glob("*.yaml")))
    api.create("osinstances", {"metadata": {"name": "n1"}, "spec": {"nodestatus": "upgrade"}})
    header, row = kubectl("get", "osinstances").stdout.splitlines()[:2]
    assert header.split()[:2] == ["NAME", "NODESTATUS"] and row.split()[:2] == ["n1", "upgrade"]
    api.create("nodes", node("n2", unschedulable=True))
    header, row = kubectl("get", "nodes").stdout.splitlines()[:2]
    assert header.split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert row.split()[:3] == ["n2", "Unknown,SchedulingDisabled", "<none>"]
