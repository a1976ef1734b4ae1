"""What a real server does with a custom resource once its CRD is installed: prune unknown
fields, apply defaults, and refuse values its structural OpenAPI v3 schema forbids (422).

Covered: type (with nullable and x-kubernetes-int-or-string), enum, required, pattern (RE2,
the server's regexp engine, when `google-re2` is installed), min/maxLength, minimum/maximum
(with exclusive*), multipleOf, min/maxItems, uniqueItems, min/maxProperties,
additionalProperties, allOf/anyOf/oneOf/not (validation only), x-kubernetes-preserve-unknown-
fields and x-kubernetes-embedded-resource for pruning, and the CEL rules in
x-kubernetes-validations when `cel-python` is installed (transition rules with `oldSelf` are
evaluated on updates only). Not covered: formats, list-type/map-keys uniqueness, CEL cost
limits, messageExpression (the static message is used), ratcheting. Without a stored CRD an
object is kept as sent, which is how the stand-in serves OS and OSInstance out of the box.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

try:  # the server's regexp engine: `$` is the end of the text, as in Go
    import re2 as _regex
except ImportError:  # pragma: no cover - depends on the environment
    _regex = re

try:
    import celpy
except ImportError:  # pragma: no cover - depends on the environment
    celpy = None

Obj = dict[str, Any]
_ROOT_KEPT = ("apiVersion", "kind", "metadata")


@dataclass(frozen=True)
class FieldError:
    """One refusal in the words of a real server (field path, reason, message)."""

    field: str
    reason: str  # FieldValueRequired, FieldValueNotSupported, FieldValueInvalid ...
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def version_schema(crd: Mapping[str, Any], version: str) -> Obj | None:
    """The openAPIV3Schema of `version` in a CRD, or None when it declares none."""
    for entry in (crd.get("spec") or {}).get("versions") or []:
        if entry.get("name") == version:
            return ((entry.get("schema") or {}).get("openAPIV3Schema")) or None
    return None


def _field(base: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{base}[{part}]"
    return f"{base}.{part}" if base else part


# -- pruning and defaulting ---------------------------------------------------------------


def prune_and_default(obj: Obj, schema: Mapping[str, Any], dropped: list[str] | None = None) -> Obj:
    """A copy of `obj` without the fields the schema does not declare, defaults filled in;
    non-nullable nulls are dropped first, as the server does before defaulting. The paths of
    dropped unknown fields are appended to `dropped` (strict field validation reports them).
    """
    out = copy.deepcopy(obj)
    _walk(out, schema, "", dropped if dropped is not None else [], root=True)
    return out


def _walk(
    value: Any, schema: Mapping[str, Any], where: str, dropped: list[str], root: bool = False
) -> None:
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True
        embedded = schema.get("x-kubernetes-embedded-resource") is True
        for key in list(value):
            if (root or embedded) and key in _ROOT_KEPT:
                continue
            sub = props.get(key)
            if sub is None and isinstance(extra, Mapping):
                sub = extra
            if sub is None:
                if not keep_unknown and extra is not True:
                    del value[key]
                    dropped.append(_field(where, key))
                continue
            if value[key] is None and not sub.get("nullable"):
                del value[key]
                continue
            _walk(value[key], sub, _field(where, key), dropped)
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
                _walk(value[key], sub, _field(where, key), dropped)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            _walk(item, schema["items"], _field(where, i), dropped)


# -- validation -----------------------------------------------------------------------------


def _type_ok(value: Any, schema: Mapping[str, Any]) -> bool:
    if value is None:
        return bool(schema.get("nullable"))
    if schema.get("x-kubernetes-int-or-string"):
        return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)
    kind = schema.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    }
    return kind is None or checks.get(kind, lambda v: True)(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {dict: "object", list: "array", str: "string", float: "number"}.get(
        type(value), type(value).__name__
    )


def _quote(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else _json_type(value)


@functools.lru_cache(maxsize=512)
def _pattern(text: str) -> Any:
    return _regex.compile(text)


def validate(value: Any, schema: Mapping[str, Any], where: str = "") -> list[FieldError]:
    """Every OpenAPI v3 (structural schema) violation in `value`, with field paths."""
    errors: list[FieldError] = []
    if not _type_ok(value, schema):
        want = "integer or string" if schema.get("x-kubernetes-int-or-string") else schema["type"]
        errors.append(
            FieldError(
                where,
                "FieldValueTypeInvalid",
                f'Invalid value: "{_json_type(value)}": {where or "body"} in body must be of '
                f"type {want}: {_quote(value)}",
            )
        )
        return errors
    if value is None:
        return errors
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(_quote(v) for v in schema["enum"])
        errors.append(
            FieldError(
                where,
                "FieldValueNotSupported",
                f"Unsupported value: {_quote(value)}: supported values: {allowed}",
            )
        )
    if isinstance(value, str):
        errors += _string_errors(value, schema, where)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        errors += _number_errors(value, schema, where)
    elif isinstance(value, list):
        errors += _array_errors(value, schema, where)
    elif isinstance(value, dict):
        errors += _object_errors(value, schema, where)
    for sub in schema.get("allOf") or []:
        errors += validate(value, sub, where)
    for key, want in (("anyOf", "at least one"), ("oneOf", "exactly one")):
        options = schema.get(key)
        if options:
            passing = sum(1 for sub in options if not validate(value, sub, where))
            if (key == "anyOf" and passing == 0) or (key == "oneOf" and passing != 1):
                errors.append(
                    FieldError(
                        where,
                        "FieldValueInvalid",
                        f"Invalid value: {_quote(value)}: must match {want} of {key}",
                    )
                )
    if isinstance(schema.get("not"), Mapping) and not validate(value, schema["not"], where):
        errors.append(FieldError(where, "FieldValueInvalid", "Invalid value: must not match"))
    return errors


def _string_errors(value: str, schema: Mapping[str, Any], where: str) -> list[FieldError]:
    errors = []
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(
            FieldError(
                where,
                "FieldValueTooLong",
                f"Too long: may not be more than {schema['maxLength']} bytes",
            )
        )
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(
            FieldError(
                where,
                "FieldValueInvalid",
                f"Invalid value: {_quote(value)}: {where} in body should be at least "
                f"{schema['minLength']} chars long",
            )
        )
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        errors.append(
            FieldError(
                where,
                "FieldValueInvalid",
                f"Invalid value: {_quote(value)}: {where} in body should match "
                f"'{schema['pattern']}'",
            )
        )
    return errors


def _number_errors(value: float, schema: Mapping[str, Any], where: str) -> list[FieldError]:
    errors = []
    if "minimum" in schema:
        low = schema["minimum"]
        if value < low or (schema.get("exclusiveMinimum") and value == low):
            errors.append(
                FieldError(
                    where,
                    "FieldValueInvalid",
                    f"Invalid value: {value}: {where} in body should be "
                    f"greater than or equal to {low}",
                )
            )
    if "maximum" in schema:
        high = schema["maximum"]
        if value > high or (schema.get("exclusiveMaximum") and value == high):
            errors.append(
                FieldError(
                    where,
                    "FieldValueInvalid",
                    f"Invalid value: {value}: {where} in body should be "
                    f"less than or equal to {high}",
                )
            )
    if schema.get("multipleOf") and value % schema["multipleOf"]:
        errors.append(
            FieldError(
                where,
                "FieldValueInvalid",
                f"Invalid value: {value}: {where} in body should be a "
                f"multiple of {schema['multipleOf']}",
            )
        )
    return errors


def _array_errors(value: list[Any], schema: Mapping[str, Any], where: str) -> list[FieldError]:
    errors = []
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(
            FieldError(
                where,
                "FieldValueTooMany",
                f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
            )
        )
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(
            FieldError(
                where,
                "FieldValueInvalid",
                f"Invalid value: {len(value)}: {where} in body should have at "
                f"least {schema['minItems']} items",
            )
        )
    if schema.get("uniqueItems"):
        seen = [json.dumps(v, sort_keys=True) for v in value]
        if len(set(seen)) != len(seen):
            errors.append(FieldError(where, "FieldValueDuplicate", "Duplicate value"))
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i, item in enumerate(value):
            errors += validate(item, items, _field(where, i))
    return errors


def _object_errors(value: Obj, schema: Mapping[str, Any], where: str) -> list[FieldError]:
    errors = []
    for key in schema.get("required") or []:
        if key not in value:
            errors.append(FieldError(_field(where, key), "FieldValueRequired", "Required value"))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append(
            FieldError(
                where,
                "FieldValueTooMany",
                f"Too many: {len(value)}: must have at most {schema['maxProperties']} items",
            )
        )
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errors.append(
            FieldError(
                where,
                "FieldValueInvalid",
                f"Invalid value: {len(value)}: {where} in body should have at "
                f"least {schema['minProperties']} properties",
            )
        )
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, sub_value in value.items():
        if not where and key in _ROOT_KEPT:
            continue
        sub = props.get(key, extra if isinstance(extra, Mapping) else None)
        if sub is not None:
            errors += validate(sub_value, sub, _field(where, key))
    return errors


# -- CEL (x-kubernetes-validations) -------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def cel_errors(
    value: Any, schema: Mapping[str, Any], old: Any = None, where: str = ""
) -> list[FieldError]:
    """Evaluate each rule on the value it is declared on, descending like the server."""
    if celpy is None or value is None:
        return []
    errors: list[FieldError] = []
    for rule in schema.get("x-kubernetes-validations") or []:
        text = rule["rule"]
        if "oldSelf" in text and old is None:
            continue  # a transition rule: only on updates
        target = where + rule.get("fieldPath", "") if rule.get("fieldPath") else where
        activation = {"self": celpy.json_to_cel(value)}
        if old is not None:
            activation["oldSelf"] = celpy.json_to_cel(old)
        try:
            ok = _program(text).evaluate(activation)
        except Exception as exc:  # a broken rule is reported as an error, not raised
            ok = exc
        if isinstance(ok, Exception):
            errors.append(
                FieldError(
                    target, "FieldValueInvalid", f'Invalid value: "object": rule error: {ok}'
                )
            )
        elif not ok:
            message = rule.get("message") or f"failed rule: {text}"
            errors.append(
                FieldError(
                    target,
                    rule.get("reason", "FieldValueInvalid"),
                    f'Invalid value: "{_json_type(value)}": {message}',
                )
            )
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                old_sub = old.get(key) if isinstance(old, dict) else None
                errors += cel_errors(value[key], sub, old_sub, _field(where, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            errors += cel_errors(item, schema["items"], None, _field(where, i))
    return errors


def check(
    obj: Obj,
    schema: Mapping[str, Any],
    old: Obj | None = None,
    dropped: list[str] | None = None,
) -> tuple[Obj, list[FieldError]]:
    """Prune and default `obj`, then validate it; returns the stored form and the errors.

    The paths of pruned unknown fields are appended to `dropped` when given.
    """
    stored = prune_and_default(obj, schema, dropped)
    return stored, validate(stored, schema) + cel_errors(stored, schema, old)
