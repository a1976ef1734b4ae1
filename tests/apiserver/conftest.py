"""One real API stand-in per test on 127.0.0.1, and official-client handles onto it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from kubeos.sim.apiserver import ApiServer

GROUP, VERSION = "upgrade.openeuler.org", "v1alpha1"


@pytest.fixture
def api() -> Iterator[ApiServer]:
    with ApiServer(watch_timeout=10, bookmark_interval=0.2) as server:
        yield server


@pytest.fixture
def api_client(api: ApiServer) -> Iterator[client.ApiClient]:
    c = api.api_client(user_agent="kubeos-test/1.0")
    yield c
    c.close()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def osinstance(name: str, **spec: object) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OSInstance",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodestatus": "idle", **spec},
    }


def node(name: str, labels: dict[str, str] | None = None, **spec: object) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": dict(spec)}


def pod(
    name: str,
    node_name: str = "n1",
    labels: dict[str, str] | None = None,
    ready: bool | None = True,
    phase: str = "Running",
) -> dict:
    status: dict = {"phase": phase}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
        "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "busybox"}]},
        "status": status,
    }
