"""Label and field selectors: every grammar form, through the official client."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubeos.sim.apiserver import ApiServer
from kubeos.sim.apiserver.selectors import SelectorError, parse_label_selector
from tests.apiserver.conftest import node, pod

SEL = "upgrade.openeuler.org/node-selector"


@pytest.fixture
def nodes(api: ApiServer) -> None:
    api.create("nodes", node("a", labels={SEL: "blue", "tier": "1"}))
    api.create("nodes", node("b", labels={SEL: "green", "tier": "2"}, unschedulable=True))
    api.create("nodes", node("c", labels={SEL: ""}))
    api.create("nodes", node("d"))


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", ["a", "b", "c", "d"]),
        (f"{SEL}=blue", ["a"]),
        (f"{SEL}==blue", ["a"]),
        (f"{SEL}!=blue", ["b", "c", "d"]),  # != also matches objects without the key
        (f"{SEL} in (blue, green)", ["a", "b"]),
        (f"{SEL} notin (blue,green)", ["c", "d"]),
        (SEL, ["a", "b", "c"]),
        (f"!{SEL}", ["d"]),
        (f"{SEL}=", ["c"]),
        (f"{SEL},tier in (2,3)", ["b"]),
        ("tier>1", ["b"]),
        ("tier<2", ["a"]),
    ],
)
def test_label_selector_forms(nodes, core: client.CoreV1Api, selector, expected) -> None:
    assert [n.metadata.name for n in core.list_node(label_selector=selector).items] == expected


def test_bad_label_selector_is_400(nodes, core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.list_node(label_selector="a in (b")
    assert err.value.status == 400


@pytest.mark.parametrize("bad", ["a in ()", "a b", "=x", "a > x"])
def test_label_selector_parser_rejects(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(bad)


def test_field_selectors(api: ApiServer, nodes, core: client.CoreV1Api) -> None:
    assert [
        n.metadata.name for n in core.list_node(field_selector="spec.unschedulable=true").items
    ] == ["b"]
    assert [
        n.metadata.name for n in core.list_node(field_selector="spec.unschedulable!=true").items
    ] == ["a", "c", "d"]
    assert [n.metadata.name for n in core.list_node(field_selector="metadata.name=c").items] == [
        "c"
    ]
    api.create("pods", pod("p1", node_name="a"))
    api.create("pods", pod("p2", node_name="b"))
    api.create(
        "pods", {**pod("p3", node_name="a"), "metadata": {"name": "p3", "namespace": "other"}}
    )
    on_a = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=a")
    assert [(p.metadata.namespace, p.metadata.name) for p in on_a.items] == [
        ("default", "p1"),
        ("other", "p3"),
    ]
    both = core.list_namespaced_pod(
        "default", field_selector="spec.nodeName=a,metadata.namespace=default"
    )
    assert [p.metadata.name for p in both.items] == ["p1"]


def test_unsupported_field_selector_is_400_like_a_real_server(nodes, core) -> None:
    with pytest.raises(ApiException) as err:
        core.list_node(field_selector="spec.podCIDR=x")
    assert err.value.status == 400
    assert "field label not supported" in err.value.body
