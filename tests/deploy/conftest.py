"""Validate objects against our CRDs the way the API server does, without an API server.

The CRD's structural OpenAPI v3 schema is turned into a JSON Schema that `jsonschema`
checks (patterns through RE2, the regexp engine of the API server, so `$` means the end of
the text as in Go), and its `x-kubernetes-validations` CEL rules are evaluated for real
with cel-python (whose `matches()` is RE2 too). Objects are closed: an unknown field is an
error, as with `kubectl apply` (server-side strict field validation) instead of silent
pruning.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pytest
import re2
import yaml

from kubeos.models.settings import ModelValidator
from kubeos.plugins import PluginHost

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SAMPLES = DEPLOY / "samples"
CRD_FILES = {
    "os": DEPLOY / "crds" / "upgrade.openeuler.org_os.yaml",
    "osinstances": DEPLOY / "crds" / "upgrade.openeuler.org_osinstances.yaml",
}

#: Keywords of a structural schema and what the conversion does with them.
_COPIED = {
    "type",
    "required",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
    "format",
}
_DROPPED = {
    "description",
    "default",
    "example",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "nullable",
    "properties",
    "items",
    "additionalProperties",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
}


@dataclass(frozen=True)
class FieldError:
    """One refusal, with the field named the way kubeos.errors.Problem names it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def load_yaml(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@cache
def load_crd(plural: str) -> dict[str, Any]:
    (crd,) = load_yaml(CRD_FILES[plural])
    return crd


def crd_version(plural: str) -> dict[str, Any]:
    (version,) = load_crd(plural)["spec"]["versions"]
    return version


def openapi_schema(plural: str) -> dict[str, Any]:
    return crd_version(plural)["schema"]["openAPIV3Schema"]


def to_json_schema(node: Mapping[str, Any], root: bool = True) -> dict[str, Any]:
    """Structural OpenAPI v3 -> JSON Schema; an unknown keyword fails rather than being lost."""
    unknown = set(node) - _COPIED - _DROPPED
    if unknown:
        raise ValueError(f"schema keyword(s) the conversion does not know: {sorted(unknown)}")
    out: dict[str, Any] = {k: node[k] for k in _COPIED if k in node}
    out.pop("format", None)  # int32/int64/date-time: the API server's own business
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in node:
        out["properties"] = {
            name: to_json_schema(sub, root=False) for name, sub in node["properties"].items()
        }
    if "items" in node:
        out["items"] = to_json_schema(node["items"], root=False)
    if "additionalProperties" in node:
        ap = node["additionalProperties"]
        out["additionalProperties"] = ap if isinstance(ap, bool) else to_json_schema(ap, False)
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in node:
            out[combinator] = [to_json_schema(s, root=False) for s in node[combinator]]
    if "not" in node:
        out["not"] = to_json_schema(node["not"], root=False)
    if (
        node.get("type") == "object"
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if root:
        # metadata is the API server's (ObjectMeta), whatever the CRD says of it.
        out.setdefault("properties", {})["metadata"] = {"type": "object"}
    return out


def _re2_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not re2.search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _re2_pattern})


def field_name(base: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{base}[{part}]"
    return f"{base}.{part}" if base else part


def _path(parts: Any) -> str:
    name = ""
    for part in parts:
        name = field_name(name, part)
    return name


def _schema_errors(error: jsonschema.ValidationError) -> list[FieldError]:
    where = _path(error.absolute_path)
    if error.validator == "required":
        missing = [r for r in error.validator_value if r not in error.instance]
        return [FieldError(field_name(where, m), "Required value") for m in missing]
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = set(error.schema.get("properties", {}))
        return [
            FieldError(field_name(where, k), "unknown field")
            for k in error.instance
            if k not in known
        ]
    return [FieldError(where, error.message)]


class CRDValidator:
    """Schema and CEL checks of one CRD version, reporting fields like our Python models."""

    def __init__(self, plural: str) -> None:
        self.openapi = openapi_schema(plural)
        self.validator = _Validator(to_json_schema(self.openapi))
        self.env = celpy.Environment()

    @cache  # noqa: B019 - one validator per CRD lives for the whole session
    def _program(self, rule: str) -> Any:
        return self.env.program(self.env.compile(rule))

    def errors(self, obj: Any) -> list[FieldError]:
        found: list[FieldError] = []
        for error in self.validator.iter_errors(obj):
            found += _schema_errors(error)
        found += self.cel_errors(self.openapi, obj, "")
        return found

    def cel_errors(self, schema: Mapping[str, Any], value: Any, where: str) -> list[FieldError]:
        """Evaluate every CEL rule on the value it is declared on, descending like the server."""
        found: list[FieldError] = []
        if value is None:
            return found
        for rule in schema.get("x-kubernetes-validations", []):
            target = where + rule.get("fieldPath", "")
            try:
                ok = self._program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)})
            except celpy.CELEvalError as exc:
                found.append(FieldError(target or where, f"rule error: {exc}"))
                continue
            if isinstance(ok, celpy.CELEvalError):
                found.append(FieldError(target or where, f"rule error: {ok}"))
            elif not ok:
                found.append(FieldError(target, rule.get("message", rule["rule"])))
        if isinstance(value, Mapping):
            for name, sub in schema.get("properties", {}).items():
                if name in value:
                    found += self.cel_errors(sub, value[name], field_name(where, name))
        elif isinstance(value, list) and "items" in schema:
            for i, item in enumerate(value):
                found += self.cel_errors(schema["items"], item, field_name(where, i))
        return found


@pytest.fixture(scope="session")
def os_crd() -> CRDValidator:
    return CRDValidator("os")


@pytest.fixture(scope="session")
def osinstance_crd() -> CRDValidator:
    return CRDValidator("osinstances")


@pytest.fixture(scope="session")
def model_validators() -> dict[str, ModelValidator]:
    """The settings validators of the installed plugins (S1 and each model's rules)."""
    host = PluginHost().load_entry_points()
    return host.model_validators()
