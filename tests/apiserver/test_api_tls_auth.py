"""HTTPS with a throw-away CA and bearer tokens: clients take the production path (a
kubeconfig with the cluster CA and a token), and the audit names the authenticated user."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from kubeos.kube.client import api_client as product_api_client
from kubeos.sim.apiserver import ApiServer
from tests.apiserver.conftest import node

AGENT = "system:serviceaccount:kubeos-system:kubeos-agent"


@pytest.fixture
def secure() -> Iterator[ApiServer]:
    with ApiServer(tls=True, watch_timeout=10) as server:
        yield server


def test_https_with_the_ca_and_a_token(secure: ApiServer) -> None:
    token = secure.add_user(AGENT)
    assert secure.url.startswith("https://127.0.0.1:")
    core = client.CoreV1Api(secure.api_client("kubeos-agent/0.1", token=token))
    core.create_node(node("n1"))
    assert [n.metadata.name for n in core.list_node().items] == ["n1"]
    assert {r.user for r in secure.audit} == {AGENT}


def test_missing_or_wrong_token_is_401(secure: ApiServer) -> None:
    secure.add_user(AGENT)
    for token in (None, "forged"):
        core = client.CoreV1Api(secure.api_client(token=token))
        with pytest.raises(ApiException) as err:
            core.list_node()
        assert err.value.status == 401
        assert json.loads(err.value.body)["reason"] == "Unauthorized"
    with urllib.request.urlopen(  # health and version stay public
        f"{secure.url}/healthz", context=ssl.create_default_context(cafile=secure.ca_file)
    ) as resp:
        assert resp.read() == b"ok"
    assert secure.audit == []  # refused before they reached a resource


def test_a_client_that_does_not_trust_the_ca_fails(secure: ApiServer) -> None:
    cfg = client.Configuration()
    cfg.host = secure.url
    cfg.retries = False
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(client.ApiClient(cfg)).list_node()
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)


def test_the_products_kubeconfig_path(secure: ApiServer, tmp_path: Path) -> None:
    """kubeos.kube.client.api_client(kubeconfig=...) as the operator and agent use it."""
    token = secure.add_user("system:serviceaccount:kubeos-system:kubeos-operator")
    path = secure.write_kubeconfig(tmp_path / "kubeconfig", token=token)
    assert path.stat().st_mode & 0o777 == 0o600
    api = product_api_client(kubeconfig=str(path))
    client.CoreV1Api(api).create_node(node("n1"))
    assert secure.audit[-1].user.endswith(":kubeos-operator")
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    assert cfg.host == secure.url


def test_watch_over_tls_and_hang_up_detection(secure: ApiServer) -> None:
    token = secure.add_user(AGENT)
    core = client.CoreV1Api(secure.api_client(token=token))
    threading.Timer(0.2, lambda: secure.create("nodes", node("n1"))).start()
    w = watch.Watch()
    for ev in w.stream(core.list_node, timeout_seconds=5):
        assert ev["object"].metadata.name == "n1"
        w.stop()

    def handler_threads() -> int:
        return sum(1 for t in threading.enumerate() if t.name.startswith("Thread-"))

    idle = handler_threads()
    raw = client.CoreV1Api(secure.api_client(token=token)).list_node(
        watch=True, timeout_seconds=60, _preload_content=False
    )
    assert handler_threads() >= idle + 1
    raw.release_conn()
    raw.close()
    deadline = time.monotonic() + 5
    while handler_threads() > idle and time.monotonic() < deadline:
        time.sleep(0.1)
    assert handler_threads() <= idle


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_with_ca_and_token(secure: ApiServer, tmp_path: Path) -> None:
    token = secure.add_user("admin")
    kubeconfig = secure.write_kubeconfig(tmp_path / "kubeconfig", token=token)
    secure.create("nodes", node("n1"))
    done = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "name"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "node/n1"
    assert {r.user for r in secure.audit} == {"admin"}
