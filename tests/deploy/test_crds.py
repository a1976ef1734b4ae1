"""The CRDs themselves: what the API server would refuse at `kubectl apply` of the CRD
(non-structural schema, CEL rules naming unknown fields, bad fieldPath), printer columns
that point nowhere, and drift from the code's names and the OSInstance contract."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import celpy
import pytest

import kubeos
from kubeos.models import os as os_model
from kubeos.models import osinstance

from .conftest import crd_version, load_crd, openapi_schema

PLURALS = ("os", "osinstances")
SELF_FIELD = re.compile(r"\bself\.([A-Za-z_][A-Za-z0-9_]*)")


def nodes(schema: Mapping[str, Any], where: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield where, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{where}.{name}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{where}[*]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from nodes(schema["additionalProperties"], f"{where}{{*}}")


def resolve(schema: Mapping[str, Any], dotted: str) -> Mapping[str, Any] | None:
    """The schema node of a `.a.b.c` path, or None when the schema has no such field."""
    node: Mapping[str, Any] | None = schema
    for part in dotted.strip(".").split("."):
        if node is None:
            return None
        node = node.get("properties", {}).get(part)
    return node


@pytest.mark.parametrize("plural", PLURALS)
def test_crd_names_match_the_code(plural: str) -> None:
    crd = load_crd(plural)
    spec = crd["spec"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert spec["group"] == kubeos.GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["plural"] == plural
    assert crd["metadata"]["name"] == f"{plural}.{kubeos.GROUP}"
    version = crd_version(plural)
    assert version["name"] == kubeos.VERSION and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    if plural == "osinstances":
        assert spec["names"]["kind"] == osinstance.KIND and plural == osinstance.PLURAL
    else:
        assert spec["names"]["kind"] == "OS"


@pytest.mark.parametrize("plural", PLURALS)
def test_schema_is_structural(plural: str) -> None:
    """What the API server requires of a v1 CRD schema (else the CRD itself is refused)."""
    for where, node in nodes(openapi_schema(plural)):
        assert "$ref" not in node and "definitions" not in node, where
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, where
        else:
            assert node.get("type") in {
                "object",
                "array",
                "string",
                "integer",
                "number",
                "boolean",
            }, f"{where}: every node needs a type"
        assert not ("properties" in node and "additionalProperties" in node), where
        if node.get("type") == "array":
            assert "items" in node, f"{where}: arrays need items"


@pytest.mark.parametrize("plural", PLURALS)
def test_printer_columns_point_at_schema_fields(plural: str) -> None:
    version = crd_version(plural)
    schema = openapi_schema(plural)
    kinds = {"string": "string", "integer": "integer", "boolean": "boolean"}
    for column in version["additionalPrinterColumns"]:
        path = column["jsonPath"]
        if path == ".metadata.creationTimestamp":
            assert column["type"] == "date"
            continue
        node = resolve(schema, path)
        assert node is not None, f"column {column['name']}: {path} is not in the schema"
        assert column["type"] == kinds[node["type"]], column["name"]


def test_printer_columns_are_what_an_admin_needs() -> None:
    """Issue 7: NODESTATUS/SYSCONFIG/UPGRADECONFIG as in the user guide's custom-columns,
    and OPSTYPE, OSVERSION and progress for the OS."""
    inst = {
        c["name"]: c["jsonPath"] for c in crd_version("osinstances")["additionalPrinterColumns"]
    }
    assert inst["NODESTATUS"] == ".spec.nodestatus"
    assert inst["SYSCONFIG"] == ".status.sysconfigs.version"
    assert inst["UPGRADECONFIG"] == ".status.upgradeconfigs.version"
    os_cols = {c["name"]: c for c in crd_version("os")["additionalPrinterColumns"]}
    assert os_cols["OPSTYPE"]["jsonPath"] == ".spec.opstype"
    assert os_cols["OSVERSION"]["jsonPath"] == ".spec.osversion"
    for progress in ("NODES", "DONE", "INPROGRESS", "FAILED"):
        assert os_cols[progress].get("priority", 0) == 0, f"{progress} shown by default"


def cel_rules(plural: str) -> list[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    return [
        (where, node, rule)
        for where, node in nodes(openapi_schema(plural))
        for rule in node.get("x-kubernetes-validations", [])
    ]


@pytest.mark.parametrize("plural", PLURALS)
def test_cel_rules_compile_and_name_only_declared_fields(plural: str) -> None:
    env = celpy.Environment()
    for where, node, rule in cel_rules(plural):
        env.compile(rule["rule"])  # raises on a syntax error
        declared = set(node.get("properties", {}))
        used = set(SELF_FIELD.findall(rule["rule"]))
        assert used <= declared, f"{where}: {rule['rule']} uses undeclared {used - declared}"
        if "fieldPath" in rule:
            assert resolve(node, rule["fieldPath"]) is not None, f"{where}: {rule['fieldPath']}"
        assert rule.get("reason", "FieldValueInvalid") in {
            "FieldValueInvalid",
            "FieldValueRequired",
            "FieldValueForbidden",
            "FieldValueDuplicate",
        }
        assert re.search(r"\[[A-Z][0-9]?\]$", rule["message"]), "messages end with a rule id"


@pytest.mark.parametrize("plural", PLURALS)
def test_strings_used_in_cel_rules_are_bounded(plural: str) -> None:
    """The API server estimates each rule's cost from maxLength and refuses unbounded ones."""
    for where, node, rule in cel_rules(plural):
        for name in set(SELF_FIELD.findall(rule["rule"])):
            sub = node["properties"][name]
            if sub["type"] == "string" and re.search(rf"self\.{name}\.matches", rule["rule"]):
                assert "maxLength" in sub, f"{where}.{name} is matched by a regex"


def _settings_shape(node: Mapping[str, Any]) -> Any:
    if isinstance(node, Mapping):
        return {k: _settings_shape(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_settings_shape(v) for v in node]
    return node


def test_settings_blocks_are_one_shape_everywhere() -> None:
    """spec/settings.md: sysconfigs and upgradeconfigs share one shape, in both CRDs."""
    copies = [
        openapi_schema(plural)["properties"]["spec"]["properties"][block]
        for plural in PLURALS
        for block in ("sysconfigs", "upgradeconfigs")
    ]
    shapes = [_settings_shape(c) for c in copies]
    assert all(s == shapes[0] for s in shapes)


def test_enums_match_the_models() -> None:
    spec = openapi_schema("os")["properties"]["spec"]["properties"]
    assert set(spec["opstype"]["enum"]) == set(os_model.OPS_TYPES)
    assert set(spec["imagetype"]["enum"]) == {"", *os_model.IMAGE_TYPES}
    assert set(spec["executionmode"]["enum"]) == {"", *os_model.EXECUTION_MODES}
    inst = openapi_schema("osinstances")["properties"]
    assert inst["spec"]["properties"]["nodestatus"]["enum"] == list(osinstance.NODE_STATUSES)
    assert inst["status"]["properties"]["phase"]["enum"] == list(osinstance.PHASES)
    upgrade = inst["spec"]["properties"]["upgrade"]["properties"]
    assert list(upgrade) == list(osinstance.UPGRADE_FIELDS)
    os_spec_types = {name: spec[name]["type"] for name in osinstance.UPGRADE_FIELDS}
    assert {n: s["type"] for n, s in upgrade.items()} == os_spec_types


def contract_paths(doc: str) -> set[str]:
    """Dotted field paths of the YAML sketch in kubeos/models/osinstance.py's docstring."""
    block = re.search(r"```yaml\n(.*?)```", doc, re.S)
    assert block is not None
    paths: set[str] = set()
    stack: list[tuple[int, str]] = []
    lines: list[str] = []
    for line in block.group(1).splitlines():
        if lines and lines[-1].count("{") > lines[-1].count("}"):
            lines[-1] += " " + line.strip()  # a flow mapping continued on the next line
        else:
            lines.append(line)
    for line in lines:
        m = re.match(r"^(\s*)([A-Za-z_]+):\s*(.*)$", line)
        if not m:
            continue
        indent, key, rest = len(m.group(1)), m.group(2), m.group(3)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([p for _, p in stack] + [key])
        paths.add(path)
        flow = re.match(r"^\{(.*)\}", rest)
        if flow:
            for item in re.split(r",\s*(?![^\[]*\])", flow.group(1)):
                sub = item.split(":")[0].strip()
                if sub:
                    paths.add(f"{path}.{sub}")
        stack.append((indent, key))
    return paths


def test_osinstance_schema_declares_every_field_of_the_contract() -> None:
    paths = contract_paths(osinstance.__doc__ or "")
    assert {"spec.nodestatus", "status.pinnedcurrent", "spec.upgrade.cacert"} <= paths
    schema = openapi_schema("osinstances")
    missing = sorted(p for p in paths if resolve(schema, p) is None)
    assert missing == []
