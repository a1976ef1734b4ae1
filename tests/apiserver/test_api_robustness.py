"""Hostile or odd HTTP input gets a Status answer and leaves the server serving; concurrent
optimistic writers lose no update."""

from __future__ import annotations

import http.client
import json
import threading

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from kubeos.sim.apiserver import ApiServer
from kubeos.sim.apiserver import transport as apihttp
from tests.apiserver.conftest import node


def raw(
    api: ApiServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(api.host, api.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def test_bad_requests_get_status_bodies_and_the_server_keeps_serving(api: ApiServer) -> None:
    cases = [
        ("POST", "/api/v1/nodes", b"{not json", 400),
        ("POST", "/api/v1/nodes", b"[" * 100_000 + b"]" * 100_000, 400),
        ("POST", "/api/v1/nodes", b'"a string"', 400),
        ("GET", "/api/v1/gadgets", None, 404),
        ("GET", "/api/v1/namespaces/../nodes", None, 404),
        ("GET", "/api/v1/namespaces/default/nodes/n1", None, 404),  # nodes are cluster-scoped
        ("GET", "/api/v1/pods/p1", None, 404),  # a namespaced object needs its namespace
        ("GET", "/api/v1/nodes/n1/eviction", None, 404),
        ("PUT", "/api/v1/nodes", b"{}", 405),
        ("GET", "/api/v1/nodes?labelSelector=a%20in%20(", None, 400),
        ("GET", "/api/v1/nodes?watch=1&resourceVersion=abc", None, 400),
        ("GET", "/nowhere", None, 404),
        ("PATCH", "/api/v1/nodes/n1", b"{}", 404),
    ]
    for method, path, body, code in cases:
        status, answer = raw(api, method, path, body, {"Content-Type": "application/json"})
        assert (path, status) == (path, code)
        assert answer["kind"] == "Status" and answer["code"] == code, path
    assert raw(api, "GET", "/api/v1/nodes")[0] == 200


def test_oversized_body_is_413(api: ApiServer, monkeypatch) -> None:
    monkeypatch.setattr(apihttp, "MAX_BODY", 1000)
    status, answer = raw(api, "POST", "/api/v1/nodes", b"{" + b" " * 2000 + b"}")
    assert status == 413 and answer["reason"] == "RequestEntityTooLarge"


def test_chunked_request_body(api: ApiServer) -> None:
    body = json.dumps(node("n1")).encode()
    status, answer = raw(
        api,
        "POST",
        "/api/v1/nodes",
        iter([body[:10], body[10:]]),
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        chunked=True,
    )
    assert status == 201 and answer["metadata"]["name"] == "n1"


def test_concurrent_read_modify_write_loses_no_update(api: ApiServer) -> None:
    api.create("nodes", node("n1"))
    writers, rounds = 6, 10
    rv = client.CoreV1Api(api.api_client()).list_node().metadata.resource_version
    conflicts = []

    def writer() -> None:
        core = client.CoreV1Api(api.api_client())
        for _ in range(rounds):
            while True:
                current = core.read_node("n1")
                labels = current.metadata.labels or {}
                labels["count"] = str(int(labels.get("count", "0")) + 1)
                current.metadata.labels = labels
                try:
                    core.replace_node("n1", current)
                    break
                except ApiException as exc:
                    assert exc.status == 409
                    conflicts.append(1)

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert api.get("nodes", "n1", "")["metadata"]["labels"]["count"] == str(writers * rounds)
    assert conflicts, "six writers never collided: the test proves nothing"
    core = client.CoreV1Api(api.api_client())
    seen = [
        int(e["object"].metadata.resource_version)
        for e in watch.Watch().stream(core.list_node, resource_version=rv, timeout_seconds=1)
    ]
    assert len(seen) == writers * rounds and seen == sorted(seen)


def test_an_outage_restart_keeps_port_objects_and_resumable_history() -> None:
    """stop() then start(): clients see connection errors, then the same API again (G2)."""
    import urllib3

    from kubeos.kube.retry import retry_call

    with ApiServer() as api:
        core = client.CoreV1Api(api.api_client())
        core.create_node(node("n1"))
        rv = core.list_node().metadata.resource_version
        url = api.url
        api.stop()
        cfg = client.Configuration()
        cfg.host, cfg.retries = url, False
        with pytest.raises(urllib3.exceptions.HTTPError):
            client.CoreV1Api(client.ApiClient(cfg)).list_node()
        threading.Timer(0.3, api.start).start()
        out = retry_call(
            lambda: client.CoreV1Api(client.ApiClient(cfg)).patch_node(
                "n1", {"spec": {"unschedulable": True}}
            ),
            what="cordon across an outage",
            base_delay=0.1,
        )
        assert api.url == url and out.spec.unschedulable is True
        events = [
            e["type"]
            for e in watch.Watch().stream(core.list_node, resource_version=rv, timeout_seconds=1)
        ]
        assert events == ["MODIFIED"]


def test_rbac_names_are_path_segments(api: ApiServer) -> None:
    rbac = client.RbacAuthorizationV1Api(api.api_client())
    role = {"metadata": {"name": "system:kubeos:agent"}, "rules": []}
    assert rbac.create_cluster_role(role).metadata.name == "system:kubeos:agent"
    with pytest.raises(ApiException) as err:
        rbac.create_cluster_role({"metadata": {"name": "a/b"}, "rules": []})
    assert err.value.status == 422
