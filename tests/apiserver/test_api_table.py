"""Server-side printing: what `kubectl get` shows (Table answers, printer columns, ages)."""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kubeos.sim.apiserver import ApiServer
from kubeos.sim.apiserver import table as apitable
from tests.apiserver.conftest import node

REPO = Path(__file__).resolve().parents[2]
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def get(api: ApiServer, path: str, accept: str = TABLE) -> dict:
    conn = http.client.HTTPConnection(api.host, api.port, timeout=5)
    try:
        conn.request("GET", path, headers={"Accept": accept})
        resp = conn.getresponse()
        assert resp.status == 200
        return json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 60, "5h1m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (400 * 86400, "400d"),
        (3 * 365 * 86400 + 20 * 86400, "3y20d"),
    ],
)
def test_human_age(seconds: int, shown: str) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    stamp = datetime.fromtimestamp(now.timestamp() - seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert apitable.human_age(stamp, now) == shown


def test_accept_negotiation() -> None:
    assert apitable.wanted(TABLE) == "meta.k8s.io/v1"
    assert apitable.wanted("application/json;as=Table;v=v1beta1;g=meta.k8s.io") == (
        "meta.k8s.io/v1beta1"
    )
    assert apitable.wanted("application/json") is None
    assert apitable.wanted(None) is None


def test_custom_resource_printer_columns_from_the_crd(api: ApiServer) -> None:
    api.install_crds(*sorted((REPO / "deploy" / "crds").glob("*.yaml")))
    api.create("osinstances", {"metadata": {"name": "n1"}, "spec": {"nodestatus": "upgrade"}})
    api.patch("osinstances", "n1", {"status": {"phase": "fetching"}}, status=True)
    table = get(api, "/apis/upgrade.openeuler.org/v1alpha1/namespaces/default/osinstances")
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[:2] == ["Name", "NODESTATUS"] and "PHASE" in names
    cells = dict(zip(names, table["rows"][0]["cells"], strict=True))
    assert cells["NODESTATUS"] == "upgrade" and cells["PHASE"] == "fetching"
    assert cells["AGE"].endswith("s")
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    plain = get(
        api,
        "/apis/upgrade.openeuler.org/v1alpha1/namespaces/default/osinstances",
        accept="application/json",
    )
    assert plain["kind"] == "OSInstanceList"


def test_node_columns_and_include_object(api: ApiServer) -> None:
    body = node("n1", labels={"node-role.kubernetes.io/control-plane": ""}, unschedulable=True)
    body["status"] = {"conditions": [{"type": "Ready", "status": "False"}]}
    api.create("nodes", body)
    table = get(api, "/api/v1/nodes/n1?includeObject=Object")
    cells = table["rows"][0]["cells"]
    assert cells[:3] == ["n1", "NotReady,SchedulingDisabled", "control-plane"]
    assert table["rows"][0]["object"]["kind"] == "Node"
    assert "object" not in get(api, "/api/v1/nodes?includeObject=None")["rows"][0]


def test_watch_as_table(api: ApiServer) -> None:
    api.create("nodes", node("n1"))
    conn = http.client.HTTPConnection(api.host, api.port, timeout=5)
    conn.request("GET", "/api/v1/nodes?watch=1&timeoutSeconds=1", headers={"Accept": TABLE})
    lines = [json.loads(x) for x in conn.getresponse().read().splitlines() if x]
    conn.close()
    assert [e["type"] for e in lines] == ["ADDED"]
    assert lines[0]["object"]["kind"] == "Table"
    assert lines[0]["object"]["rows"][0]["cells"][0] == "n1"
