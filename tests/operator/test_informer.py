"""The informer against the real-HTTP API stand-in: list+watch, 410 Gone, backoff."""

from __future__ import annotations

import functools
import time

import pytest
from kubernetes import client

from kubeos.kube.informer import Informer
from kubeos.sim.apiserver import ApiServer
from tests.operator.builders import node

pytestmark = pytest.mark.timeout(30)


def until(pred, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def names(inf: Informer) -> list[str]:
    return sorted(o["metadata"]["name"] for o in inf.items())


@pytest.fixture
def node_informer(api: ApiServer):
    core = client.CoreV1Api(api.api_client())
    changes: list[int] = []
    inf = Informer("nodes", core.list_node, on_change=lambda: changes.append(1),
                   watch_timeout=1, min_backoff=0.1, max_backoff=0.4)
    inf.changes = changes  # type: ignore[attr-defined]
    yield inf
    inf.stop()


def test_lists_then_follows_the_watch(api, node_informer):
    api.create("nodes", node("n1"))
    node_informer.start()
    assert node_informer.wait_synced(5)
    assert names(node_informer) == ["n1"]
    api.create("nodes", node("n2"))
    api.patch("nodes", "n1", {"metadata": {"labels": {"x": "y"}}}, namespace="")
    until(lambda: names(node_informer) == ["n1", "n2"])
    until(lambda: (node_informer.get("n1") or {})["metadata"]["labels"].get("x") == "y")
    api.delete("nodes", "n2", namespace="")
    until(lambda: names(node_informer) == ["n1"])
    assert node_informer.relists == 1  # watch timeouts resume, they do not re-list
    time.sleep(1.5)
    assert node_informer.relists == 1
    assert len(node_informer.changes) >= 4  # type: ignore[attr-defined]


def test_410_gone_relists_and_errors_back_off(api, node_informer):
    api.create("nodes", node("n1"))
    api.create("nodes", node("n2"))
    node_informer.start()
    assert node_informer.wait_synced(5)
    api.inject_fault("watch", "nodes", 500, count=1000)
    time.sleep(1.2)  # the open watch times out (1 s); reconnects now fail
    api.delete("nodes", "n1", namespace="")  # missed by the informer
    api.create("nodes", node("n3"))
    api.compact()  # the informer's resourceVersion is now too old: 410 Gone
    started = time.monotonic()
    time.sleep(1.0)
    failed_watches = [r for r in api.audit if r.verb == "watch" and r.resource == "nodes"]
    assert len(failed_watches) <= 12, "reconnects must back off, not spin"
    api.clear_faults()
    until(lambda: names(node_informer) == ["n2", "n3"])
    assert node_informer.relists >= 2
    assert time.monotonic() - started < 5


def test_reconnects_when_the_list_fails_at_start(api, node_informer):
    api.create("nodes", node("n1"))
    api.inject_fault("list", "nodes", 503, count=2)
    node_informer.start()
    assert node_informer.wait_synced(5)
    assert names(node_informer) == ["n1"]


def test_an_older_object_never_replaces_a_newer_one(api):
    custom = client.CustomObjectsApi(api.api_client())
    inf = Informer("os", functools.partial(custom.list_namespaced_custom_object,
                                           "upgrade.openeuler.org", "v1alpha1", "default", "os"))
    new = {"metadata": {"name": "a", "namespace": "default", "resourceVersion": "9"}}
    old = {"metadata": {"name": "a", "namespace": "default", "resourceVersion": "8"}, "x": 1}
    inf.upsert(new)
    inf.upsert(old)
    assert inf.get("default/a") == new
    inf.discard("default/a")
    assert inf.get("default/a") is None


def test_watches_that_end_at_once_back_off_instead_of_storming():
    """A server (or proxy) that ends every watch at once, without an error."""
    with ApiServer(watch_timeout=0) as api:
        core = client.CoreV1Api(api.api_client())
        inf = Informer("nodes", core.list_node, watch_timeout=60, min_backoff=0.1,
                       max_backoff=0.4)
        inf.start()
        try:
            time.sleep(2.0)
        finally:
            inf.stop()
        watches = [r for r in api.audit if r.verb == "watch" and r.resource == "nodes"]
        assert 2 <= len(watches) <= 15
