"""The REST semantics of the API stand-in, without HTTP: routes, verbs, list paging,
discovery documents, and one request applied to the store."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from kubeos.sim.apiserver import resources as apiresources
from kubeos.sim.apiserver import table as apitable
from kubeos.sim.apiserver.errors import ApiError
from kubeos.sim.apiserver.resources import BY_PATH, RESOURCES, ResourceType
from kubeos.sim.apiserver.selectors import SelectorError, parse_field_selector, parse_label_selector
from kubeos.sim.apiserver.store import ApiStore, Obj

SERVER_VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0-kubeos-sim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.22.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class Route:
    rtype: ResourceType
    namespace: str
    name: str
    subresource: str


def parse_route(path: str) -> Route | tuple[str, str] | None:
    """A resource route; (group, version) for a discovery document; None when unknown."""
    parts = [unquote(p) for p in path.strip("/").split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return (group, version)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in BY_PATH:
        namespace, rest = rest[1], rest[2:]
    rtype = BY_PATH.get((group, version, rest[0]))
    if rtype is None or len(rest) > 3:
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if namespace and not rtype.namespaced:
        return None
    if rtype.namespaced and name and not namespace:
        return None
    if sub and sub not in rtype.allowed_subresources:
        return None
    return Route(rtype, namespace, name, sub)


def flag(query: dict[str, list[str]], key: str) -> bool:
    return (query.get(key) or [""])[-1].lower() in ("true", "1")


def param(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def verb_for(method: str, route: Route, query: dict[str, list[str]]) -> str:
    if method == "GET":
        if flag(query, "watch"):
            return "watch"
        return "get" if route.name else "list"
    if method == "POST" and (not route.name or route.subresource == "eviction"):
        return "create"
    if route.subresource == "eviction":
        raise ApiError(405, "the eviction subresource only accepts POST")
    if method == "PUT" and route.name:
        return "update"
    if method == "PATCH" and route.name:
        return "patch"
    if method == "DELETE" and not route.subresource:
        return "delete" if route.name else "deletecollection"
    raise ApiError(405, f"{method} is not allowed on this path")


def selector(rtype: ResourceType, query: dict[str, list[str]]) -> Callable[[Obj], bool]:
    try:
        labels = parse_label_selector(param(query, "labelSelector"))
        fields = parse_field_selector(param(query, "fieldSelector"), rtype.field_selectors)
    except SelectorError as exc:
        raise ApiError(400, f"unable to parse selector: {exc}") from exc
    return lambda obj: labels(obj["metadata"].get("labels") or {}) and fields(obj)


def discovery_groups() -> Obj:
    groups = []
    for group, versions in apiresources.groups().items():
        if not group:
            continue
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def discovery_resources(group: str, version: str) -> Obj:
    listed = [r for r in RESOURCES if r.group == group and r.version == version]
    if not listed:
        raise ApiError(404, f"the server could not find the requested resource ({group}/{version})")
    verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    resources: list[Obj] = []
    for r in listed:
        resources.append(
            {
                "name": r.plural,
                "singularName": r.kind.lower(),
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": verbs,
            }
        )
        for sub in r.allowed_subresources:
            sub_kind = "Eviction" if sub == "eviction" else r.kind
            sub_verbs = ["create"] if sub == "eviction" else ["get", "patch", "update"]
            sub_group = {"group": "policy", "version": "v1"} if sub == "eviction" else {}
            resources.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": sub_kind,
                    "verbs": sub_verbs,
                    **sub_group,
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _deleted_status(rtype: ResourceType, obj: Obj) -> Obj:
    """What a real server answers for an immediate delete of most built-in resources."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": obj["metadata"]["name"],
            "group": rtype.group,
            "kind": rtype.plural,
            "uid": obj["metadata"]["uid"],
        },
    }


def _encode_continue(namespace: str, name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([namespace, name]).encode()).decode()


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        namespace, name = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ApiError(400, f"invalid continue token {token!r}") from exc
    return str(namespace), str(name)


def handle(
    store: ApiStore,
    verb: str,
    route: Route,
    query: dict[str, list[str]],
    body: Any,
    content_type: str,
    accept: str | None = None,
) -> tuple[int, Any]:
    """Run one non-watch request against the store: (HTTP code, JSON body); reads answer
    as a Table when the Accept header asks for one (kubectl get)."""
    rtype, ns, name, sub = route.rtype, route.namespace, route.name, route.subresource
    dry_run = bool(query.get("dryRun"))
    strict = (param(query, "fieldValidation") or "").lower() == "strict"
    table_version = apitable.wanted(accept) if verb in ("get", "list") else None
    if verb == "get":
        obj = store.get(rtype, ns, name)
        if table_version:
            return 200, as_table(store, table_version, rtype, [obj], obj["metadata"], query)
        return 200, obj
    if verb == "list":
        listed = list_objects(store, rtype, ns, query)
        if table_version:
            return 200, as_table(
                store, table_version, rtype, listed["items"], listed["metadata"], query
            )
        return 200, listed
    if verb == "create" and sub == "eviction":
        check_eviction_body(name, ns, body)
        if not dry_run:
            store.evict(ns, name)
        return 201, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }
    if verb == "create":
        return 201, store.create(rtype, ns, body, dry_run=dry_run, strict=strict)
    if verb == "update":
        return 200, store.replace(
            rtype, ns, name, body, subresource=sub or None, dry_run=dry_run, strict=strict
        )
    if verb == "patch":
        if body is None:
            raise ApiError(400, "a PATCH needs a body")
        return 200, store.patch(
            rtype,
            ns,
            name,
            content_type,
            body,
            subresource=sub or None,
            dry_run=dry_run,
            strict=strict,
        )
    options = body if isinstance(body, dict) else {}
    if verb == "delete":
        gone = store.delete(
            rtype, ns, name, preconditions=options.get("preconditions"), dry_run=dry_run
        )
        if rtype.returns_deleted_object or gone["metadata"].get("deletionTimestamp"):
            return 200, gone
        return 200, _deleted_status(rtype, gone)
    if verb == "deletecollection":
        match = selector(rtype, query)
        items, _ = store.list(rtype, ns or None, match)
        deleted = [
            store.delete(
                rtype,
                i["metadata"].get("namespace", ""),
                i["metadata"]["name"],
                dry_run=dry_run,
            )
            for i in items
        ]
        return 200, list_body(rtype, deleted, store.resource_version)
    raise ApiError(405, f"verb {verb} is not supported")


def as_table(
    store: ApiStore,
    api_version: str,
    rtype: ResourceType,
    items: list[Obj],
    meta: Obj,
    query: dict[str, list[str]],
) -> Obj:
    out = apitable.table(
        api_version,
        rtype,
        items,
        meta.get("resourceVersion", ""),
        store.crd(rtype),
        param(query, "includeObject"),
    )
    for key in ("continue", "remainingItemCount"):
        if key in meta:
            out["metadata"][key] = meta[key]
    return out


def list_objects(store: ApiStore, rtype: ResourceType, ns: str, query: dict[str, list[str]]) -> Obj:
    """A list answer: selectors, then limit/continue paging in (namespace, name) order."""
    items, rv = store.list(rtype, ns or None, selector(rtype, query))
    body = list_body(rtype, items, rv)
    token = param(query, "continue")
    if token:
        after = _decode_continue(token)
        items = [
            i for i in items if (i["metadata"].get("namespace", ""), i["metadata"]["name"]) > after
        ]
    try:
        limit = int(param(query, "limit") or 0)
    except ValueError as exc:
        raise ApiError(400, "limit must be an integer") from exc
    if limit > 0 and len(items) > limit:
        last = items[limit - 1]["metadata"]
        body["metadata"]["continue"] = _encode_continue(last.get("namespace", ""), last["name"])
        body["metadata"]["remainingItemCount"] = len(items) - limit
        items = items[:limit]
    body["items"] = items
    return body


def list_body(rtype: ResourceType, items: list[Obj], rv: str) -> Obj:
    return {
        "kind": f"{rtype.kind}List",
        "apiVersion": rtype.api_version,
        "metadata": {"resourceVersion": rv},
        "items": items,
    }


def check_eviction_body(name: str, namespace: str, body: Any) -> None:
    if body is None:
        return
    if not isinstance(body, dict) or body.get("kind") not in (None, "Eviction"):
        raise ApiError(400, "the eviction body must be a policy/v1 Eviction")
    meta = body.get("metadata") or {}
    if meta.get("name") not in (None, "", name):
        raise ApiError(400, "name in URL does not match name in Eviction object")
    if meta.get("namespace") not in (None, "", namespace):
        raise ApiError(400, "namespace in URL does not match namespace in Eviction object")
