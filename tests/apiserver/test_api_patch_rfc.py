"""The patch functions against the examples of RFC 7386 and RFC 6902."""

from __future__ import annotations

import pytest

from kubeos.sim.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge_patch

# RFC 7386 appendix A: (target, patch, result)
RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC7386)
def test_merge_patch_rfc7386_appendix(target, patch, result) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == before  # not modified


def test_json_patch_rfc6902_examples() -> None:
    assert json_patch({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}]) == {
        "foo": "bar",
        "baz": "qux",
    }
    assert json_patch(
        {"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}]
    ) == {"foo": ["bar", "qux", "baz"]}
    assert json_patch({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}]) == {
        "foo": ["bar", "baz"]
    }
    assert json_patch(
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
    ) == {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}
    assert json_patch({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}]) == {
        "/": 9,
        "~1": 10,
    }
    assert json_patch(
        {"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}]
    ) == {
        "foo": "bar",
        "child": {"grandchild": {}},
    }
    assert json_patch({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc"]}]) == {
        "foo": ["bar", ["abc"]]
    }


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],  # A.12: no parent
        [{"op": "remove", "path": "/nope"}],
        [{"op": "replace", "path": "/nope", "value": 1}],
        [{"op": "test", "path": "/foo", "value": "other"}],
        [{"op": "add", "path": "/list/5", "value": 1}],
        [{"op": "add", "path": "/list/01", "value": 1}],
        [{"op": "frobnicate", "path": "/foo"}],
        [{"op": "add", "path": "foo", "value": 1}],
        {"op": "add"},
    ],
)
def test_json_patch_errors(ops) -> None:
    with pytest.raises(PatchError):
        json_patch({"foo": "bar", "list": [1]}, ops)


def test_a_failed_json_patch_changes_nothing() -> None:
    doc = {"a": 1}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/x"}])
    assert doc == {"a": 1}


def test_strategic_merge_directives() -> None:
    target = {"spec": {"taints": [{"key": "a"}], "sel": {"x": "1", "y": "2"}}}
    assert strategic_merge_patch(target, {"spec": {"taints": [{"key": "b"}]}}) == {
        "spec": {"taints": [{"key": "b"}], "sel": {"x": "1", "y": "2"}}  # unkeyed: replaced
    }
    assert strategic_merge_patch(target, {"spec": {"sel": {"$patch": "replace", "z": "3"}}}) == {
        "spec": {"taints": [{"key": "a"}], "sel": {"z": "3"}}
    }
    assert strategic_merge_patch(target, {"spec": {"sel": {"$patch": "delete"}}}) == {
        "spec": {"taints": [{"key": "a"}]}
    }
    with pytest.raises(PatchError):
        strategic_merge_patch(target, {"spec": {"$retainKeys": ["sel"]}})
    with pytest.raises(PatchError):  # a keyed list item without its key
        strategic_merge_patch({"conditions": [{"type": "A"}]}, {"conditions": [{"status": "x"}]})
