"""Just enough of /openapi/v3 for kubectl: per group-version documents whose write operations
declare the `fieldValidation` query parameter, so `kubectl apply` / `create` validate on the
server (strict field validation) instead of downloading schemas for client-side checks.

Schemas are not published (components.schemas is empty): kubectl explain and client-side
validation of built-in kinds are not supported.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kubeos.sim.apiserver.errors import ApiError
from kubeos.sim.apiserver.resources import RESOURCES, ResourceType, groups

Obj = dict[str, Any]
_QUERY = {"in": "query", "schema": {"type": "string"}, "uniqueItems": True}
_WRITE_PARAMS = [{"name": n, **_QUERY} for n in ("dryRun", "fieldManager", "fieldValidation")]
_OK = {"200": {"description": "OK"}}


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def root() -> Obj:
    """GET /openapi/v3: one entry per group-version."""
    paths = {}
    for group, versions in groups().items():
        for version in versions:
            path = _gv_path(group, version)
            digest = hashlib.sha256(json.dumps(gv_document(path)).encode()).hexdigest()[:16]
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


def _operations(rtype: ResourceType, verbs: tuple[str, ...]) -> Obj:
    gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
    ops: Obj = {}
    for verb in verbs:
        ops[verb] = {
            "operationId": f"{verb}{rtype.kind}",
            "parameters": _WRITE_PARAMS if verb in ("post", "put", "patch") else [],
            "responses": _OK,
            "x-kubernetes-group-version-kind": gvk,
        }
    return ops


def gv_document(path: str) -> Obj:
    """GET /openapi/v3/<api/v1 | apis/<group>/<version>>."""
    listed = [r for r in RESOURCES if _gv_path(r.group, r.version) == path.strip("/")]
    if not listed:
        raise ApiError(404, f"the server could not find the requested resource (openapi {path})")
    paths: Obj = {}
    for r in listed:
        base = f"/{_gv_path(r.group, r.version)}"
        if r.namespaced:
            base += "/namespaces/{namespace}"
        paths[f"{base}/{r.plural}"] = _operations(r, ("get", "post"))
        paths[f"{base}/{r.plural}/{{name}}"] = _operations(r, ("get", "put", "patch", "delete"))
        if r.status:
            paths[f"{base}/{r.plural}/{{name}}/status"] = _operations(r, ("get", "put", "patch"))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.30.0-kubeos-sim"},
        "paths": paths,
        "components": {"schemas": {}},
    }
