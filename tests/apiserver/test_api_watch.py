"""Watch streams consumed by kubernetes.watch.Watch: live events, resume from a
resourceVersion, 410 Gone, selector transitions, timeouts, bookmarks and server stop."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from kubeos.sim.apiserver import ApiServer
from tests.apiserver.conftest import GROUP, VERSION, node, osinstance

OSI = (GROUP, VERSION, "default", "osinstances")


def later(delay: float, action) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        action()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_live_events_arrive_in_order(api: ApiServer, custom) -> None:
    custom.create_namespaced_custom_object(*OSI, osinstance("n1"))

    def writes() -> None:
        custom.patch_namespaced_custom_object(*OSI, "n1", {"spec": {"nodestatus": "upgrade"}})
        custom.patch_namespaced_custom_object_status(*OSI, "n1", {"status": {"phase": "done"}})
        custom.delete_namespaced_custom_object(*OSI, "n1")

    later(0.2, writes)
    seen = []
    w = watch.Watch()
    for ev in w.stream(custom.list_namespaced_custom_object, *OSI, timeout_seconds=5):
        seen.append(
            (
                ev["type"],
                ev["object"]["spec"]["nodestatus"],
                (ev["object"].get("status") or {}).get("phase"),
            )
        )
        if ev["type"] == "DELETED":
            w.stop()
    assert seen == [
        ("ADDED", "idle", None),  # no resourceVersion: the current state first
        ("MODIFIED", "upgrade", None),
        ("MODIFIED", "upgrade", "done"),
        ("DELETED", "upgrade", "done"),
    ]


def test_typed_watch_resumes_from_a_resource_version(api: ApiServer, core) -> None:
    core.create_node(node("n1"))
    start = core.list_node().metadata.resource_version
    core.patch_node("n1", {"spec": {"unschedulable": True}})
    core.create_node(node("n2"))
    events = [
        (e["type"], e["object"].metadata.name, e["object"].spec.unschedulable)
        for e in watch.Watch().stream(core.list_node, resource_version=start, timeout_seconds=1)
    ]
    assert events == [("MODIFIED", "n1", True), ("ADDED", "n2", None)]


def test_watch_restarts_itself_after_server_timeouts_without_losing_events(custom) -> None:
    with ApiServer(watch_timeout=0.3) as api:
        c = client.CustomObjectsApi(api.api_client())
        rv = c.list_namespaced_custom_object(*OSI)["metadata"]["resourceVersion"]

        def writes() -> None:
            for i in range(6):
                c.create_namespaced_custom_object(*OSI, osinstance(f"n{i}"))
                time.sleep(0.15)

        later(0.05, writes)
        w = watch.Watch()
        names = []
        for ev in w.stream(c.list_namespaced_custom_object, *OSI, resource_version=rv):
            names.append(ev["object"]["metadata"]["name"])
            if len(names) == 6:
                w.stop()
        assert names == [f"n{i}" for i in range(6)]
        assert sum(1 for a in api.audit if a.verb == "watch") >= 2


def test_too_old_resource_version_is_410_gone(api: ApiServer, core) -> None:
    core.create_node(node("n1"))
    old = core.list_node().metadata.resource_version
    core.create_node(node("n2"))
    api.compact()
    with pytest.raises(ApiException) as err:
        list(watch.Watch().stream(core.list_node, resource_version=old, timeout_seconds=1))
    assert err.value.status == 410
    # without timeout_seconds the Watch retries once with the same version, then raises
    with pytest.raises(ApiException) as err:
        list(watch.Watch().stream(core.list_node, resource_version=old))
    assert err.value.status == 410


def test_bounded_history_expires_old_versions() -> None:
    with ApiServer(history_limit=3) as api:
        core = client.CoreV1Api(api.api_client())
        core.create_node(node("n0"))
        old = core.list_node().metadata.resource_version
        for i in range(1, 5):
            core.create_node(node(f"n{i}"))
        with pytest.raises(ApiException) as err:
            list(watch.Watch().stream(core.list_node, resource_version=old, timeout_seconds=1))
        assert err.value.status == 410
        recent = str(int(core.list_node().metadata.resource_version) - 2)
        names = [
            e["object"].metadata.name
            for e in watch.Watch().stream(
                core.list_node, resource_version=recent, timeout_seconds=1
            )
        ]
        assert names == ["n3", "n4"]


def test_selector_watch_sees_objects_enter_and_leave(api: ApiServer, core) -> None:
    core.create_node(node("n1"))
    rv = core.list_node().metadata.resource_version
    core.patch_node("n1", {"metadata": {"labels": {"pick": "yes"}}})
    core.patch_node("n1", {"spec": {"unschedulable": True}})
    core.patch_node("n1", {"metadata": {"labels": {"pick": None}}})
    core.create_node(node("n2"))
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_node, label_selector="pick=yes", resource_version=rv, timeout_seconds=1
        )
    ]
    assert events == [("ADDED", "n1"), ("MODIFIED", "n1"), ("DELETED", "n1")]


def test_field_selector_watch_on_one_object(api: ApiServer, core) -> None:
    core.create_node(node("n1"))
    core.create_node(node("n2"))
    rv = core.list_node().metadata.resource_version
    core.patch_node("n2", {"spec": {"unschedulable": True}})
    core.patch_node("n1", {"spec": {"unschedulable": True}})
    events = [
        e["object"].metadata.name
        for e in watch.Watch().stream(
            core.list_node,
            field_selector="metadata.name=n1",
            resource_version=rv,
            timeout_seconds=1,
        )
    ]
    assert events == ["n1"]


def test_timeout_seconds_ends_the_stream(api: ApiServer, core) -> None:
    began = time.monotonic()
    assert list(watch.Watch().stream(core.list_node, timeout_seconds=1)) == []
    assert 0.9 <= time.monotonic() - began < 3


def test_bookmarks_when_allowed(api: ApiServer, core) -> None:
    core.create_node(node("n1"))
    rv = core.list_node().metadata.resource_version
    w = watch.Watch()
    for ev in w.stream(
        core.list_node, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=3
    ):
        assert ev["type"] == "BOOKMARK"
        assert ev["raw_object"]["metadata"]["resourceVersion"] == rv
        w.stop()


def test_server_stop_ends_open_streams() -> None:
    api = ApiServer().start()
    c = client.CoreV1Api(api.api_client())
    done = threading.Event()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            list(watch.Watch().stream(c.list_node, timeout_seconds=60))
        except Exception as exc:  # a reset connection is an acceptable end too
            errors.append(exc)
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    time.sleep(0.3)
    began = time.monotonic()
    api.stop()
    assert done.wait(5), "the watch stream survived the server"
    assert time.monotonic() - began < 5


def test_a_client_that_hangs_up_frees_its_watch(api: ApiServer) -> None:
    import http.client

    def handler_threads() -> int:
        return sum(1 for t in threading.enumerate() if t.name.startswith("Thread-"))

    before = handler_threads()
    conn = http.client.HTTPConnection(api.host, api.port, timeout=5)
    conn.request("GET", "/api/v1/nodes?watch=1&timeoutSeconds=60")
    assert conn.getresponse().status == 200
    assert handler_threads() == before + 1
    conn.close()
    deadline = time.monotonic() + 5
    while handler_threads() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert handler_threads() == before
