"""Admission checks a real server applies to every write, before anything is stored:
kind/apiVersion, namespace, name and label syntax, a resourceVersion on create, and the
official client's model (what a typed client could not read back is refused)."""

from __future__ import annotations

import re
from typing import Any

from kubernetes import client as k8s_models

from kubeos.sim.apiserver.errors import ApiError, invalid
from kubeos.sim.apiserver.resources import ResourceType

Obj = dict[str, Any]

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def validate_labels(kind: str, name: str, meta: Obj) -> None:
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise invalid(kind, name, f"metadata.{field}", "must be a map of strings")
        for key, value in values.items():
            if not isinstance(value, str):
                raise invalid(kind, name, f"metadata.{field}[{key}]", "value must be a string")
            prefix, _, short = key.rpartition("/")
            if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
                raise invalid(kind, name, f"metadata.{field}", f"invalid key prefix {key!r}")
            if len(short) > 63 or not _LABEL_NAME.match(short):
                raise invalid(kind, name, f"metadata.{field}", f"invalid key {key!r}")
            if field == "labels" and value and (len(value) > 63 or not _LABEL_NAME.match(value)):
                raise invalid(
                    kind,
                    name,
                    f"metadata.labels[{key}]",
                    f"invalid value {value!r}: at most 63 characters, alphanumeric, '-', '_' "
                    "or '.', starting and ending with an alphanumeric character",
                )


def check_model(rtype: ResourceType, obj: Obj) -> None:
    """Refuse what the official client could not read back (a real server's schema refuses
    it too: a pod without containers, a boolean field holding a string)."""
    from_dict = getattr(getattr(k8s_models, rtype.model, None), "from_dict", None)
    if not rtype.model or from_dict is None:  # older, non-pydantic clients: no check
        return
    try:
        from_dict(obj)
    except ValueError as exc:  # pydantic.ValidationError
        errors = exc.errors() if callable(getattr(exc, "errors", None)) else []
        where = getattr(exc, "title", rtype.model)
        detail = "; ".join(
            f"{where}.{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
            for e in errors[:5]
        )
        name = (obj.get("metadata") or {}).get("name", "")
        raise ApiError(
            422,
            f'{rtype.kind} "{name}" is invalid: {detail or exc}',
            details={"name": name, "kind": rtype.plural},
        ) from exc


def refuse_resource_version_on_create(meta: Obj) -> None:
    """A real server's storage answers 500 for a create carrying a (valid, non-zero)
    resourceVersion: usually an object read back and re-posted without being cleaned."""
    try:
        version = int(str(meta.get("resourceVersion") or "0"))
    except ValueError:
        return
    if version > 0:
        raise ApiError(500, "resourceVersion should not be set on objects to be created")


def check_type(rtype: ResourceType, obj: Obj) -> None:
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if kind not in (None, rtype.kind):
        raise ApiError(400, f"kind {kind!r} does not match the URL's resource ({rtype.kind})")
    if api_version not in (None, rtype.api_version):
        raise ApiError(
            400,
            f"the API version in the data ({api_version}) does not match the expected "
            f"API version ({rtype.api_version})",
        )
    obj["kind"], obj["apiVersion"] = rtype.kind, rtype.api_version


def check_namespace(rtype: ResourceType, namespace: str | None, meta: Obj) -> str:
    if not rtype.namespaced:
        meta.pop("namespace", None)
        return ""
    if not namespace:
        raise ApiError(400, f"{rtype.plural} are namespaced: the URL needs a namespace")
    if meta.get("namespace") not in (None, "", namespace):
        raise ApiError(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        )
    return namespace


#: Kinds whose names are path segments (RBAC: "system:controller:node-controller").
PATH_SEGMENT_NAMED = frozenset({"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"})


def check_name(rtype: ResourceType, name: str) -> None:
    if rtype.kind in PATH_SEGMENT_NAMED:
        if name in (".", "..") or "/" in name or "%" in name:
            raise invalid(
                rtype.kind, name, "metadata.name", "may not be '.', '..' or contain '/' or '%'"
            )
        return
    pattern = _DNS_LABEL if rtype.plural == "namespaces" else _DNS_SUBDOMAIN
    if len(name) > 253 or not pattern.match(name):
        raise invalid(
            rtype.kind,
            name,
            "metadata.name",
            "a lowercase RFC 1123 name must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character",
        )


def check_event(rtype: ResourceType, obj: Obj, namespace: str) -> None:
    """What a real server checks on a new Event: the referenced object's namespace must be
    the event's (a cluster-scoped object's events go to "default"), and an events.k8s.io/v1
    Event needs eventTime, type, reason, action and the reporting controller/instance."""
    if rtype.kind != "Event":
        return
    name = (obj.get("metadata") or {}).get("name", "")
    ref_field = "regarding" if rtype.group else "involvedObject"
    ref_ns = (obj.get(ref_field) or {}).get("namespace") or ""
    if (ref_ns and ref_ns != namespace) or (not ref_ns and namespace not in ("", "default")):
        raise invalid("Event", name, f"{ref_field}.namespace", "does not match event.namespace")
    if not rtype.group:
        return
    for field in ("eventTime", "reason", "action", "reportingController", "reportingInstance"):
        if not obj.get(field):
            raise invalid("Event", name, field, "Required value")
    if obj.get("type") not in ("Normal", "Warning"):
        raise invalid("Event", name, "type", f"has invalid value: {obj.get('type')}")
    if len(obj.get("note") or "") > 1024:
        raise invalid("Event", name, "note", "can have at most 1024 characters")
