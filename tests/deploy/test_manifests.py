"""The manifests parse, hang together (kustomization, names, images, namespaces), and what
the workloads run exists: their commands, options and probes are executed here for real."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
MANIFESTS = sorted(p for p in DEPLOY.rglob("*.yaml") if "samples" not in p.parts)
CLUSTER_SCOPED = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def workload(rel: str) -> dict[str, Any]:
    (doc,) = docs(DEPLOY / rel)
    return doc


def container(rel: str) -> dict[str, Any]:
    (c,) = workload(rel)["spec"]["template"]["spec"]["containers"]
    return c


def kustomization() -> dict[str, Any]:
    return docs(DEPLOY / "kustomization.yaml")[0]


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: str(p.name))
def test_every_manifest_parses(path: Path) -> None:
    found = docs(path)
    assert found
    for d in found:
        assert isinstance(d, dict) and d.get("apiVersion") and d.get("kind"), path
        if d["kind"] != "Kustomization":
            assert d["metadata"]["name"]


#: The oldest Kubernetes the manifests target (ValidatingAdmissionPolicy v1, node name in
#: service-account tokens) and the newest the schema package knows.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_manifest_passes_the_kubernetes_api_schema(path: Path, version: str) -> None:
    """Strict: a misspelt field (hostPid, livenesProbe ...) fails instead of being dropped."""
    for d in docs(path):
        if d["kind"] == "Kustomization":
            continue
        kubernetes_validate.validate(d, version, strict=True)


def test_kustomization_lists_every_manifest_and_only_existing_ones() -> None:
    listed = {DEPLOY / r for r in kustomization()["resources"]}
    assert all(p.exists() for p in listed)
    assert listed == {p for p in MANIFESTS if p.name != "kustomization.yaml"}


def test_namespaced_objects_name_their_namespace() -> None:
    """kustomization.yaml has no namespace transformer (it would move the Roles)."""
    assert "namespace" not in kustomization()
    for path in MANIFESTS:
        for d in docs(path):
            if d["kind"] not in CLUSTER_SCOPED | {"Kustomization"}:
                assert d["metadata"].get("namespace"), f"{path.name}: {d['kind']}"


def test_workloads_use_existing_service_accounts_and_kustomized_images() -> None:
    accounts = {
        (d["metadata"]["namespace"], d["metadata"]["name"])
        for p in MANIFESTS
        for d in docs(p)
        if d["kind"] == "ServiceAccount"
    }
    images = {i["name"] for i in kustomization()["images"]}
    for rel in ("operator/deployment.yaml", "agent/daemonset.yaml"):
        w = workload(rel)
        sa = w["spec"]["template"]["spec"]["serviceAccountName"]
        assert (w["metadata"]["namespace"], sa) in accounts
        assert container(rel)["image"].split(":")[0] in images


def test_operator_runs_unprivileged_with_leader_election() -> None:
    w = workload("operator/deployment.yaml")
    assert w["spec"]["replicas"] >= 2
    pod = w["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = container("operator/deployment.yaml")["securityContext"]
    assert sc == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key)
    assert not pod.get("volumes")
    env = {e["name"]: e for e in container("operator/deployment.yaml")["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_agent_pod_shares_only_what_it_needs_with_the_host() -> None:
    pod = workload("agent/daemonset.yaml")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True  # K1: net.* sysctls of the node
    assert pod["hostIPC"] is True  # K1: kernel.shm*/msg*/sem of the node
    assert pod["hostPID"] is False  # the reboot goes through systemd's socket
    c = container("agent/daemonset.yaml")
    assert c["securityContext"] == {"privileged": True}
    assert [(v["name"], v["hostPath"]["path"]) for v in pod["volumes"]] == [("host", "/")]
    assert c["volumeMounts"] == [
        {"name": "host", "mountPath": "/host", "mountPropagation": "HostToContainer"}
    ]
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


def test_agent_runs_on_every_worker_and_not_on_the_control_plane() -> None:
    pod = workload("agent/daemonset.yaml")["spec"]["template"]["spec"]
    assert {"operator": "Exists"} in pod["tolerations"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (term,) = terms["nodeSelectorTerms"]
    excluded = {e["key"] for e in term["matchExpressions"] if e["operator"] == "DoesNotExist"}
    assert "node-role.kubernetes.io/control-plane" in excluded


def _console_scripts() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return set(project["scripts"])


@pytest.mark.parametrize(
    ("rel", "probe"),
    [
        ("operator/deployment.yaml", "livenessProbe"),
        ("operator/deployment.yaml", "readinessProbe"),
        ("agent/daemonset.yaml", "livenessProbe"),
        ("agent/daemonset.yaml", "readinessProbe"),
    ],
)
def test_probe_commands_exist_and_succeed(rel: str, probe: str) -> None:
    """The probes are exec probes on our own CLI: run them against this installation."""
    argv = container(rel)[probe]["exec"]["command"]
    assert argv[0] in _console_scripts()
    done = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("rel", ["operator/deployment.yaml", "agent/daemonset.yaml"])
def test_container_command_parses_with_the_cli(rel: str) -> None:
    """Every option the workload passes is one the command accepts (checked via --help)."""
    argv = container(rel)["command"]
    assert argv[0] in _console_scripts()
    options = [a for a in argv if a.startswith("--")]
    subcommand = [a for a in argv[1:] if not a.startswith("-")][:1]
    done = subprocess.run(
        [str(BIN / argv[0]), *subcommand, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": str(BIN)},
    )
    assert done.returncode == 0, done.stderr
    for option in options:
        assert option in done.stdout, f"{argv[0]} {subcommand[0]} has no {option}"


def _containerfile() -> str:
    return (REPO / "Containerfile").read_text()


def test_containerfile_installs_the_products_plugins() -> None:
    """The image carries the same plugin set as scripts/setup installs."""
    text = _containerfile()
    default = re.search(r'^ARG PLUGINS="([^"]+)"', text, re.M)
    assert default is not None
    setup = (REPO / "scripts/setup").read_text()
    listed = re.search(r"for p in ([a-z_ ]+); do", setup)
    assert listed is not None
    assert default.group(1).split() == listed.group(1).split()
    for plugin in default.group(1).split():
        assert (REPO / "plugins" / plugin / "pyproject.toml").exists()


def _stages(text: str) -> dict[str, str]:
    """Stage name -> the stage's lines."""
    stages = {}
    for chunk in re.split(r"^FROM ", text, flags=re.M)[1:]:
        name = re.match(r"\S+ AS (\w+)", chunk)
        assert name is not None, f"unnamed stage: FROM {chunk.splitlines()[0]}"
        stages[name.group(1)] = chunk
    return stages


def test_containerfile_stages_match_the_workloads() -> None:
    text = _containerfile()
    stages = _stages(text)
    assert set(stages) == {"wheels", "operator", "agent"}
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    for src in re.findall(r"^COPY (?!--)(\S+) ", text, re.M):
        assert (REPO / src.rstrip("/")).exists(), src
    for stage, rel in (("operator", "operator/deployment.yaml"), ("agent", "agent/daemonset.yaml")):
        cmd = re.search(r"^CMD (\[.*\])$", stages[stage], re.M)
        assert cmd is not None, stage
        assert json.loads(cmd.group(1)) == container(rel)["command"]
    # The final stages install only from the wheels built in the first one.
    for stage in ("operator", "agent"):
        assert "--no-index --find-links /wheels" in stages[stage]


def test_dockerignore_keeps_the_build_context_to_the_sources() -> None:
    text = (REPO / ".dockerignore").read_text()
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.startswith("#")]
    assert lines[0] == "**"
    assert {"!pyproject.toml", "!README.md", "!kubeos", "!plugins"} <= set(lines)
    assert "**/*.egg-info" in lines  # editable-install leftovers would shadow entry points


@pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed"
)
def test_kustomize_renders_everything_in_its_namespace() -> None:
    done = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    expected = sum(len(docs(DEPLOY / r)) for r in kustomization()["resources"])
    assert len(rendered) == expected
    spaces = {(d["kind"], d["metadata"].get("namespace")) for d in rendered}
    assert ("Role", "default") in spaces
    assert ("DaemonSet", "kubeos-system") in spaces
    for d in rendered:
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kubeos"
