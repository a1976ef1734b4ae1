"""With the project's real CRDs installed, custom resources are pruned, defaulted and
validated (schema + CEL) on every write, as a real server would: a field the operator or
agent writes that the CRD does not declare is dropped here too, not only in production."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from kubeos.sim.apiserver import ApiServer
from kubeos.sim.apiserver import schema as apischema
from tests.apiserver.conftest import GROUP, VERSION, osinstance

REPO = Path(__file__).resolve().parents[2]
CRDS = sorted((REPO / "deploy" / "crds").glob("*.yaml"))
SAMPLE = REPO / "deploy" / "samples" / "upgrade-disk.yaml"
OSI = (GROUP, VERSION, "default", "osinstances")
OS = (GROUP, VERSION, "default", "os")


@pytest.fixture
def crds(api: ApiServer) -> None:
    if not CRDS:
        pytest.skip("deploy/crds has no CRD files")
    assert set(api.install_crds(*CRDS)) == {
        "os.upgrade.openeuler.org",
        "osinstances.upgrade.openeuler.org",
    }


def sample() -> dict:
    return yaml.safe_load(SAMPLE.read_text())


def causes(err: ApiException) -> list[tuple[str, str]]:
    body = json.loads(err.body)
    assert body["reason"] == "Invalid" and body["code"] == 422
    return [(c["field"], c["reason"]) for c in body["details"]["causes"]]


def test_the_samples_are_accepted(crds, custom) -> None:
    for path in sorted((REPO / "deploy" / "samples").glob("*.yaml")):
        obj = yaml.safe_load(path.read_text())
        obj["metadata"]["name"] = path.stem
        custom.create_namespaced_custom_object(*OS, obj)


def test_unknown_fields_are_pruned(crds, custom) -> None:
    body = osinstance("n1", bogus="x")
    body["spec"]["upgrade"] = {"imagetype": "disk", "surprise": 1}
    out = custom.create_namespaced_custom_object(*OSI, body)
    assert "bogus" not in out["spec"]
    assert out["spec"]["upgrade"] == {"imagetype": "disk"}
    out = custom.patch_namespaced_custom_object_status(
        *OSI, "n1", {"status": {"phase": "done", "extra": True}}
    )
    assert out["status"] == {"phase": "done"}


def test_enum_and_type_violations_are_422(crds, custom) -> None:
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(*OSI, osinstance("n1", nodestatus="dance"))
    assert err.value.status == 422
    assert causes(err.value) == [("spec.nodestatus", "FieldValueNotSupported")]
    assert 'Unsupported value: "dance"' in json.loads(err.value.body)["message"]
    custom.create_namespaced_custom_object(*OSI, osinstance("n1"))
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object_status(*OSI, "n1", {"status": {"phase": 3}})
    assert causes(err.value) == [("status.phase", "FieldValueTypeInvalid")]


def test_cel_rules_refuse_an_unsafe_http_url(crds, custom) -> None:
    obj = sample()
    obj["spec"].update(imageurl="http://images.example.internal/u.img", flagSafe=False)
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(*OS, obj)
    assert ("spec.imageurl", "FieldValueForbidden") in causes(err.value)
    assert "[D2]" in json.loads(err.value.body)["message"]
    obj["spec"]["flagSafe"] = True
    custom.create_namespaced_custom_object(*OS, obj)


def test_without_crds_objects_are_kept_as_sent(custom) -> None:
    out = custom.create_namespaced_custom_object(*OSI, osinstance("n1", bogus="x"))
    assert out["spec"]["bogus"] == "x"


SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 3, "default": 1},
                "budget": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "gone": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "items": {
                    "type": "array",
                    "maxItems": 2,
                    "items": {"type": "object", "properties": {"k": {"type": "string"}}},
                },
                "size": {
                    "type": "integer",
                    "x-kubernetes-validations": [
                        {"rule": "self >= oldSelf", "message": "size may only grow"}
                    ],
                },
            },
        }
    },
}


def test_schema_prunes_defaults_and_keeps_what_it_should() -> None:
    obj = {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "a", "labels": {"k": "v"}},
        "spec": {
            "name": "abc",
            "note": None,
            "gone": None,
            "labels": {"any": "thing"},
            "free": {"deep": {"er": 1}},
            "items": [{"k": "v", "drop": 1}],
            "unknown": 1,
        },
        "status": {"dropped": True},
    }
    stored, errors = apischema.check(obj, SCHEMA)
    assert errors == []
    assert stored["metadata"] == obj["metadata"]
    assert stored["spec"] == {
        "name": "abc",
        "note": None,
        "labels": {"any": "thing"},
        "free": {"deep": {"er": 1}},
        "items": [{"k": "v"}],
        "replicas": 1,
    }
    assert "status" not in stored
    assert obj["spec"]["unknown"] == 1  # the input is not modified


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ({}, "spec.name", "FieldValueRequired"),
        ({"name": "1"}, "spec.name", "FieldValueInvalid"),
        ({"name": "abcdef"}, "spec.name", "FieldValueTooLong"),
        ({"name": "ABC"}, "spec.name", "FieldValueInvalid"),
        ({"name": "a", "replicas": 4}, "spec.replicas", "FieldValueInvalid"),
        ({"name": "a", "replicas": True}, "spec.replicas", "FieldValueTypeInvalid"),
        ({"name": "a", "budget": 1.5}, "spec.budget", "FieldValueTypeInvalid"),
        ({"name": "a", "items": [{}, {}, {}]}, "spec.items", "FieldValueTooMany"),
        ({"name": "a", "labels": {"k": 1}}, "spec.labels.k", "FieldValueTypeInvalid"),
    ],
)
def test_schema_violations_name_field_and_reason(spec, field, reason) -> None:
    _, errors = apischema.check({"spec": spec}, SCHEMA)
    assert [(e.field, e.reason) for e in errors] == [(field, reason)]


def test_every_violation_is_reported() -> None:
    _, errors = apischema.check({"spec": {"name": "", "replicas": -1}}, SCHEMA)
    assert [e.field for e in errors] == ["spec.name", "spec.name", "spec.replicas"]
    assert "should be at least 1 chars long" in errors[0].message
    assert "should match '^[a-z]+$'" in errors[1].message


def test_transition_rules_run_on_updates_only() -> None:
    old = {"spec": {"name": "a", "size": 5}}
    assert apischema.check({"spec": {"name": "a", "size": 1}}, SCHEMA)[1] == []
    _, errors = apischema.check({"spec": {"name": "a", "size": 1}}, SCHEMA, old)
    assert [(e.field, e.message) for e in errors] == [
        ("spec.size", 'Invalid value: "integer": size may only grow')
    ]
    assert apischema.check(copy.deepcopy(old), SCHEMA, old)[1] == []
