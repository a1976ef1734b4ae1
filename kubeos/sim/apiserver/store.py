"""The thread-safe object store behind the API stand-in: etcd plus the generic registry.

One global, monotonically increasing resourceVersion; every write bumps it by one and
appends exactly one event to a bounded history, so a watch can resume from any version
still in the history and gets 410 Gone for an older one. Server-managed metadata (uid,
creationTimestamp, generation, resourceVersion) is set here and cannot be overwritten by
clients. With a status subresource, the main endpoint keeps the stored status and
`/status` changes nothing but the status; `metadata.generation` moves only when something
outside metadata and status changes. A write that changes nothing is a no-op (no new
resourceVersion, no event), as on a real server.

Every write passes apivalidate (names, labels, the client's model) and, for a custom
resource whose CRD is stored, apischema (prune, default, validate). Not enforced (known
limits): namespace existence, pod graceful deletion (pods go at once; there is no kubelet),
garbage collection of ownerReferences, managedFields, server-side apply.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubeos.sim.apiserver import eviction as apieviction
from kubeos.sim.apiserver import schema as apischema
from kubeos.sim.apiserver import validate as apivalidate
from kubeos.sim.apiserver.errors import ApiError, already_exists, conflict, invalid, not_found
from kubeos.sim.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from kubeos.sim.apiserver.resources import RESOURCES, ResourceType, resolve

Obj = dict[str, Any]
ObjectFilter = Callable[[Obj], bool]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
CRD_KEY = "customresourcedefinitions.apiextensions.k8s.io"
_SERVER_MANAGED = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "resourceVersion")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Event:
    """One committed write; `old` is the object before it (None for ADDED)."""

    rv: int
    resource: str  # ResourceType.key
    namespace: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj
    old: Obj | None


def _spec_part(rtype: ResourceType, obj: Obj) -> Obj:
    """What `generation` tracks: everything but metadata (and status with a subresource)."""
    skip = {"metadata", "status"} if rtype.status else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skip}


def _comparable(obj: Obj) -> Obj:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


class ApiStore:
    """Objects by resource, namespace and name; events; watch."""

    def __init__(self, history_limit: int = 10000) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self._rv = 0
        self._history: deque[Event] = deque()
        self._history_limit = history_limit
        self._compacted = 0  # watches from a version below this get 410 Gone
        self._closed = False

    # -- reading ---------------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def get(self, rtype: ResourceType, namespace: str, name: str) -> Obj:
        with self._lock:
            obj = self._objects.get(rtype.key, {}).get((self._ns(rtype, namespace), name))
            if obj is None:
                raise not_found(rtype.plural, rtype.group, name)
            return copy.deepcopy(obj)

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None = None,
        match: ObjectFilter | None = None,
    ) -> tuple[list[Obj], str]:
        """Matching objects sorted by namespace and name, and the list's resourceVersion."""
        with self._lock:
            items = [
                copy.deepcopy(obj)
                for (ns, _), obj in sorted(self._objects.get(rtype.key, {}).items())
                if (not namespace or ns == namespace) and (match is None or match(obj))
            ]
            return items, str(self._rv)

    # -- writing ---------------------------------------------------------------------------

    def create(
        self,
        rtype: ResourceType,
        namespace: str,
        obj: Obj,
        *,
        dry_run: bool = False,
        strict: bool = False,
    ) -> Obj:
        """POST. `strict` is fieldValidation=Strict: unknown fields are a 400, not pruned."""
        if not isinstance(obj, dict):
            raise ApiError(400, "the request body must be a JSON object")
        obj = copy.deepcopy(obj)
        apivalidate.check_type(rtype, obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be an object")
        namespace = apivalidate.check_namespace(rtype, namespace, meta)
        with self._lock:
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = self._generate_name(rtype, namespace, str(meta["generateName"]))
            name = meta.get("name")
            if not name or not isinstance(name, str):
                raise invalid(rtype.kind, "", "metadata.name", "name or generateName is required")
            apivalidate.check_name(rtype, name)
            apivalidate.validate_labels(rtype.kind, name, meta)
            bucket = self._objects.setdefault(rtype.key, {})
            if (namespace, name) in bucket:
                raise already_exists(rtype.plural, rtype.group, name)
            apivalidate.refuse_resource_version_on_create(meta)
            for key in _SERVER_MANAGED:
                meta.pop(key, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            meta["generation"] = 1
            if rtype.namespaced:
                meta["namespace"] = namespace
            obj = self._admit(rtype, obj, None, strict)
            apivalidate.check_model(rtype, obj)
            apivalidate.check_event(rtype, obj, namespace)
            if dry_run:
                return obj
            return self._commit(rtype, namespace, name, "ADDED", obj, None)

    def replace(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        obj: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
    ) -> Obj:
        """PUT: 409 when the body carries a resourceVersion that is not the stored one."""
        if not isinstance(obj, dict):
            raise ApiError(400, "the request body must be a JSON object")
        obj = copy.deepcopy(obj)
        apivalidate.check_type(rtype, obj)
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be an object")
        if meta.get("name") not in (None, name):
            raise ApiError(
                400,
                f"the name of the object ({meta.get('name')}) does not match the name on "
                f"the URL ({name})",
            )
        apivalidate.check_namespace(rtype, namespace, dict(meta))
        with self._lock:
            current = self.get(rtype, namespace, name)
            return self._update(rtype, current, obj, subresource, dry_run, strict)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
    ) -> Obj:
        """PATCH: merge, strategic merge (built-in types only) or JSON patch."""
        with self._lock:
            current = self.get(rtype, namespace, name)
            try:
                if content_type == MERGE_PATCH:
                    if not isinstance(body, dict):
                        raise PatchError("a merge patch must be a JSON object")
                    result = merge_patch(current, body)
                elif content_type == STRATEGIC_PATCH:
                    if rtype.custom:
                        raise ApiError(
                            415,
                            "strategic merge patch is not supported for custom resources; use "
                            "application/merge-patch+json",
                        )
                    if not isinstance(body, dict):
                        raise PatchError("a strategic merge patch must be a JSON object")
                    result = strategic_merge_patch(current, body)
                elif content_type == JSON_PATCH:
                    result = json_patch(current, body)
                else:
                    raise ApiError(415, f"unsupported patch content type {content_type!r}")
            except PatchError as exc:
                raise ApiError(422, f"patch cannot be applied: {exc}") from exc
            if not isinstance(result, dict):
                raise ApiError(422, "the patched object is not a JSON object")
            meta = result.get("metadata") or {}
            if meta.get("name") != name:
                raise ApiError(400, "a patch cannot change metadata.name")
            if rtype.namespaced and meta.get("namespace") != namespace:
                raise ApiError(400, "a patch cannot change metadata.namespace")
            return self._update(rtype, current, result, subresource, dry_run, strict)

    def delete(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        *,
        preconditions: Obj | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Delete, or only mark with deletionTimestamp while finalizers remain."""
        with self._lock:
            current = self.get(rtype, namespace, name)
            meta = current["metadata"]
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != meta["uid"]:
                raise conflict(rtype.plural, rtype.group, name, "Precondition failed: UID")
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
                raise conflict(
                    rtype.plural, rtype.group, name, "Precondition failed: ResourceVersion"
                )
            if dry_run:
                return current
            if meta.get("finalizers"):
                if meta.get("deletionTimestamp"):
                    return current
                marked = copy.deepcopy(current)
                marked["metadata"]["deletionTimestamp"] = now_rfc3339()
                return self._commit(
                    rtype, self._ns(rtype, namespace), name, "MODIFIED", marked, current
                )
            return self._commit(
                rtype, self._ns(rtype, namespace), name, "DELETED", current, current
            )

    def evict(self, namespace: str, name: str) -> None:
        """The pods/eviction subresource: PDB check (apieviction), then delete the pod."""
        pods, pdbs = resolve("pods"), resolve("poddisruptionbudgets")
        with self._lock:
            pod = self.get(pods, namespace, name)
            budgets, _ = self.list(pdbs, namespace)
            siblings, _ = self.list(pods, namespace)
            apieviction.check(pod, budgets, siblings, self._controller)
            self.delete(pods, namespace, name)

    def _controller(self, kind: str, namespace: str, name: str) -> Obj | None:
        """A pod's controller by kind, for the eviction's expected-pod count."""
        rtype = next((r for r in RESOURCES if r.kind == kind and r.group == "apps"), None)
        if rtype is None:
            return None
        with self._lock:
            return self._objects.get(rtype.key, {}).get((namespace, name))

    def crd(self, rtype: ResourceType) -> Obj | None:
        """The stored CustomResourceDefinition of a custom resource, if installed."""
        if not rtype.custom:
            return None
        with self._lock:
            crd = self._objects.get(CRD_KEY, {}).get(("", f"{rtype.plural}.{rtype.group}"))
            return copy.deepcopy(crd) if crd else None

    def compact(self) -> None:
        """Forget the whole history, like an etcd compaction: older watches get 410."""
        with self._lock:
            self._history.clear()
            self._compacted = self._rv

    def close(self) -> None:
        """Wake every watch and make it end (the server is stopping)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        """Serve watches again after close(): the objects and history are kept."""
        with self._cond:
            self._closed = False

    # -- watching --------------------------------------------------------------------------

    def watch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        match: ObjectFilter,
        resource_version: str | None,
        *,
        timeout: float,
        alive: Callable[[], bool] = lambda: True,
        bookmark_every: float | None = None,
    ) -> Iterator[Obj]:
        """Watch events as {type, object}; ends at timeout, on close, or when !alive().

        Validates at once (raises ApiError before any byte is streamed), then returns the
        stream. No resourceVersion or "0": synthetic ADDED events for what exists first.
        """
        with self._lock:
            if resource_version in (None, "", "0"):
                initial, rv = self.list(rtype, namespace, match)
                cursor = int(rv)
                first = [{"type": "ADDED", "object": o} for o in initial]
            else:
                try:
                    cursor = int(resource_version)
                except ValueError as exc:
                    raise ApiError(400, f"invalid resourceVersion {resource_version!r}") from exc
                first = [self._gone(cursor)] if cursor < self._compacted else []
        return self._stream(rtype, namespace, match, cursor, first, timeout, alive, bookmark_every)

    def _stream(
        self,
        rtype: ResourceType,
        namespace: str | None,
        match: ObjectFilter,
        cursor: int,
        first: list[Obj],
        timeout: float,
        alive: Callable[[], bool],
        bookmark_every: float | None,
    ) -> Iterator[Obj]:
        if first and first[0]["type"] == "ERROR":
            yield first[0]
            return
        yield from first
        deadline = time.monotonic() + timeout
        last_bookmark = time.monotonic()
        while True:
            with self._cond:
                remaining = deadline - time.monotonic()
                if self._rv <= cursor and not self._closed and remaining > 0:
                    wait = min(remaining, 1.0)
                    if bookmark_every is not None:
                        wait = min(
                            wait, max(0.0, last_bookmark + bookmark_every - time.monotonic())
                        )
                    self._cond.wait(wait)
                if self._closed:
                    return
                if cursor < self._compacted:
                    yield self._gone(cursor)
                    return
                events = self._events_after(cursor)
                cursor = max(cursor, self._rv)
            for event in events:
                out = self._filter_event(event, rtype, namespace, match)
                if out is not None:
                    yield out
            if time.monotonic() >= deadline or not alive():
                return
            if bookmark_every is not None and time.monotonic() - last_bookmark >= bookmark_every:
                last_bookmark = time.monotonic()
                yield {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": rtype.kind,
                        "apiVersion": rtype.api_version,
                        "metadata": {"resourceVersion": str(cursor)},
                    },
                }

    def wait_for(
        self,
        rtype: ResourceType,
        predicate: Callable[[list[Obj]], Any],
        namespace: str | None = None,
        timeout: float = 10.0,
    ) -> Any:
        """Block until predicate(list of objects) is truthy; returns its value (tests, sim).

        The predicate runs outside the store lock, so it may itself call the API over HTTP;
        it is evaluated again after every write (and at least twice a second).
        """
        deadline = time.monotonic() + timeout
        while True:
            items, rv = self.list(rtype, namespace)
            value = predicate(items)
            if value:
                return value
            with self._cond:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    raise TimeoutError(f"{rtype.key}: condition not met within {timeout}s")
                if str(self._rv) == rv:
                    self._cond.wait(min(remaining, 0.5))

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _ns(rtype: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if rtype.namespaced else ""

    def _admit(self, rtype: ResourceType, obj: Obj, old: Obj | None, strict: bool) -> Obj:
        """For a custom resource whose CRD is stored: prune, default, validate (apischema).

        Strict field validation refuses unknown fields with 400, like a real server (only
        where a schema is known: built-in kinds are not checked for unknown fields).
        """
        if not rtype.custom:
            return obj
        crd = self.crd(rtype)
        schema = apischema.version_schema(crd, rtype.version) if crd else None
        if schema is None:
            return obj
        dropped: list[str] = []
        stored, errors = apischema.check(obj, schema, old, dropped)
        if strict and dropped:
            raise ApiError(
                400,
                "strict decoding error: "
                + ", ".join(f'unknown field "{path}"' for path in dropped),
            )
        if errors:
            name = obj["metadata"].get("name", "")
            listed = str(errors[0]) if len(errors) == 1 else f"[{', '.join(map(str, errors))}]"
            raise ApiError(
                422,
                f'{rtype.kind}.{rtype.group} "{name}" is invalid: {listed}',
                details={
                    "name": name,
                    "group": rtype.group,
                    "kind": rtype.kind,
                    "causes": [
                        {"reason": e.reason, "message": e.message, "field": e.field} for e in errors
                    ],
                },
            )
        return stored

    def _generate_name(self, rtype: ResourceType, namespace: str, prefix: str) -> str:
        bucket = self._objects.get(rtype.key, {})
        for _ in range(100):
            suffix = "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
            if (namespace, prefix + suffix) not in bucket:
                return prefix + suffix
        raise ApiError(500, f"could not generate a unique name from {prefix!r}")

    def _update(
        self,
        rtype: ResourceType,
        current: Obj,
        new: Obj,
        subresource: str | None,
        dry_run: bool,
        strict: bool = False,
    ) -> Obj:
        name = current["metadata"]["name"]
        namespace = current["metadata"].get("namespace", "")
        sent_rv = (new.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
            raise conflict(
                rtype.plural,
                rtype.group,
                name,
                "the object has been modified; please apply your changes to the latest version "
                "and try again",
            )
        if subresource == "status":
            result = copy.deepcopy(current)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        else:
            result = new
            if rtype.status:
                if "status" in current:
                    result["status"] = copy.deepcopy(current["status"])
                else:
                    result.pop("status", None)
            meta = result.setdefault("metadata", {})
            if not isinstance(meta, dict):
                raise ApiError(400, "metadata must be an object")
            for key in _SERVER_MANAGED:
                if key in current["metadata"]:
                    meta[key] = current["metadata"][key]
                else:
                    meta.pop(key, None)
            meta["name"] = name
            if rtype.namespaced:
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)
            result["kind"], result["apiVersion"] = rtype.kind, rtype.api_version
            apivalidate.validate_labels(rtype.kind, name, meta)
        result = self._admit(rtype, result, current, strict)
        if subresource != "status":
            meta = result["metadata"]
            if _spec_part(rtype, result) != _spec_part(rtype, current):
                meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        if _comparable(result) == _comparable(current):
            return current
        apivalidate.check_model(rtype, result)
        if dry_run:
            return result
        meta = result["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._commit(rtype, namespace, name, "DELETED", result, current)
        return self._commit(rtype, namespace, name, "MODIFIED", result, current)

    def _commit(
        self, rtype: ResourceType, namespace: str, name: str, kind: str, obj: Obj, old: Obj | None
    ) -> Obj:
        """The only place that writes: new resourceVersion, one history event, wake watches."""
        with self._cond:
            self._rv += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self._rv)
            bucket = self._objects.setdefault(rtype.key, {})
            if kind == "DELETED":
                bucket.pop((namespace, name), None)
            else:
                bucket[(namespace, name)] = obj
            self._history.append(Event(self._rv, rtype.key, namespace, kind, obj, old))
            while len(self._history) > self._history_limit:
                self._compacted = self._history.popleft().rv
            self._cond.notify_all()
            return copy.deepcopy(obj)

    def _events_after(self, cursor: int) -> list[Event]:
        if not self._history:
            return []
        start = max(0, cursor + 1 - self._history[0].rv)
        return list(itertools.islice(self._history, start, None))

    @staticmethod
    def _filter_event(
        event: Event, rtype: ResourceType, namespace: str | None, match: ObjectFilter
    ) -> Obj | None:
        """Map a stored event to what this watch sees: objects entering or leaving the
        selection show up as ADDED or DELETED, as on a real server."""
        if event.resource != rtype.key or (namespace and event.namespace != namespace):
            return None
        new_in = event.type != "DELETED" and match(event.obj)
        old_in = event.old is not None and match(event.old)
        if event.type == "DELETED":
            kind = "DELETED" if old_in else None
        elif new_in:
            kind = "MODIFIED" if old_in else "ADDED"
        else:
            kind = "DELETED" if old_in else None
        if kind is None:
            return None
        return {"type": kind, "object": copy.deepcopy(event.obj)}

    def _gone(self, cursor: int) -> Obj:
        return {
            "type": "ERROR",
            "object": ApiError(
                410, f"too old resource version: {cursor} ({self._compacted})", reason="Expired"
            ).status(),
        }
