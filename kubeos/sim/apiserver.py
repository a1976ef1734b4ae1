"""An in-process Kubernetes API server stand-in for tests and the embedded simulation.

No kube-apiserver binary can run here, so this speaks the Kubernetes REST API over real HTTP
for the resources in `apiresources.RESOURCES`, well enough that the official `kubernetes`
client (CoreV1Api, CustomObjectsApi, CoordinationV1Api, PolicyV1Api, EventsV1Api,
kubernetes.watch.Watch) works against it unchanged: CRUD, status subresources,
resourceVersion conflicts, merge / strategic merge / JSON patch, label and field selectors,
chunked watch streams with resume and 410 Gone, and the pods/eviction subresource with
PodDisruptionBudgets. On top: fault injection (make the next N matching requests fail) and
an audit log of every request in RBAC terms, from which the deployment's RBAC is derived.

Written on the standard library (ThreadingHTTPServer in a background thread) rather than on
kmock: kmock lacks resourceVersion conflicts, PUT semantics, the status split and label
selectors, and brings aiohttp; the semantics are the bulk of the work either way.

    with ApiServer() as api:
        api.create("nodes", {"metadata": {"name": "n1"}})
        core = kubernetes.client.CoreV1Api(api.api_client(user_agent="kubeos-agent/0.1"))
        core.list_node(label_selector="role=worker")
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import math
import select
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

import yaml
from kubernetes import client

from kubeos.sim import apiresources
from kubeos.sim.apierrors import ApiError
from kubeos.sim.apiresources import BY_PATH, RESOURCES, ResourceType, resolve
from kubeos.sim.apiselectors import SelectorError, parse_field_selector, parse_label_selector
from kubeos.sim.apistore import ApiStore, Obj

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024
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


class AuditRecord(NamedTuple):
    """One request in RBAC terms; api_group is "" for the core group."""

    user_agent: str
    verb: str  # get list watch create update patch delete deletecollection
    api_group: str
    version: str
    resource: str
    subresource: str
    namespace: str
    name: str


@dataclass
class Fault:
    """Fail the next `remaining` requests matching verb/resource (and the optional filters).

    `resource` is a plural ("pods") or key ("events.events.k8s.io"); "*" matches any verb or
    resource. subresource None matches any, "" only the main resource.
    """

    verb: str
    resource: str
    status: int
    remaining: int = 1
    retry_after: float | None = None
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None
    message: str = "injected fault"

    def matches(self, rec: AuditRecord) -> bool:
        if self.remaining <= 0:
            return False
        resource_ok = self.resource == "*" or self.resource in (
            rec.resource,
            f"{rec.resource}.{rec.api_group}" if rec.api_group else rec.resource,
        )
        return (
            resource_ok
            and self.verb in ("*", rec.verb)
            and (self.subresource is None or self.subresource == rec.subresource)
            and (self.namespace is None or self.namespace == rec.namespace)
            and (self.name is None or self.name == rec.name)
        )


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


def _flag(query: dict[str, list[str]], key: str) -> bool:
    return (query.get(key) or [""])[-1].lower() in ("true", "1")


def _param(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    # -- plumbing --------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def setup(self) -> None:
        super().setup()
        # Small header and body writes must not wait for delayed ACKs (40 ms per request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.api._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.api._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _send_json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, err: ApiError) -> None:
        self._send_json(err.code, err.status(), err.headers)

    def _read_body(self) -> Any:
        """The JSON body; Content-Length or chunked, at most MAX_BODY bytes."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raw = self._read_chunked()
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError as exc:
                raise ApiError(400, "invalid Content-Length") from exc
            if length < 0:
                raise ApiError(400, "invalid Content-Length")
            if length > MAX_BODY:
                raise ApiError(413, "request body too large", reason="RequestEntityTooLarge")
            raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from exc

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError as exc:
                raise ApiError(400, "malformed chunked request body") from exc
            if size < 0 or len(body) + size > MAX_BODY:
                raise ApiError(413, "request body too large", reason="RequestEntityTooLarge")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline(1024)  # the CRLF after each chunk

    def _alive(self) -> bool:
        """False once the client hung up (checked while a watch waits for events)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable:
                return self.connection.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            return False
        return True

    # -- dispatch --------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        api = self.server.api
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            body = self._read_body()
        except ApiError as err:
            self.close_connection = True
            self._send_error(err)
            return
        route = parse_route(url.path)
        try:
            if not isinstance(route, Route):
                self._non_resource(method, url.path, route)
                return
            verb = _verb(method, route, query)
            record = AuditRecord(
                self.headers.get("User-Agent", ""),
                verb,
                route.rtype.group,
                route.rtype.version,
                route.rtype.plural,
                route.subresource,
                route.namespace,
                route.name,
            )
            api._record(record)
            api._raise_fault(record)
            if verb == "watch":
                self._watch(route, query)
            else:
                code, result = api._handle(verb, route, query, body, self._content_type())
                self._send_json(code, result)
        except ApiError as err:
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug here must not kill the server thread silently
            log.exception("API stand-in: %s %s failed", method, self.path)
            self._send_error(ApiError(500, f"internal error: {exc}"))

    def _content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def _non_resource(self, method: str, path: str, route: tuple[str, str] | None) -> None:
        if method != "GET":
            raise ApiError(405, f"{method} is not allowed on {path}")
        if route is not None:
            self._send_json(200, _discovery_resources(*route))
        elif path.rstrip("/") == "/api":
            self._send_json(200, {"kind": "APIVersions", "versions": ["v1"]})
        elif path.rstrip("/") == "/apis":
            self._send_json(200, _discovery_groups())
        elif path.rstrip("/") == "/version":
            self._send_json(200, SERVER_VERSION)
        elif path.rstrip("/") in ("/healthz", "/readyz", "/livez"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            raise ApiError(404, f"the server could not find the requested resource ({path})")

    def _watch(self, route: Route, query: dict[str, list[str]]) -> None:
        api = self.server.api
        match = _selector(route.rtype, query)
        timeout = api.watch_timeout
        if (raw := _param(query, "timeoutSeconds")) is not None:
            try:
                timeout = float(int(raw))
            except ValueError as exc:
                raise ApiError(400, f"invalid timeoutSeconds {raw!r}") from exc
        if route.name:  # a watch on one object: fieldSelector=metadata.name=<name>
            inner, name = match, route.name
            match = lambda obj: obj["metadata"].get("name") == name and inner(obj)  # noqa: E731
        events = api.store.watch(
            route.rtype,
            route.namespace or None,
            match,
            _param(query, "resourceVersion"),
            timeout=timeout,
            alive=self._alive,
            bookmark_every=api.bookmark_interval if _flag(query, "allowWatchBookmarks") else None,
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            for event in events:
                line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return
        if api.stopping:
            self.close_connection = True


def _verb(method: str, route: Route, query: dict[str, list[str]]) -> str:
    if method == "GET":
        if _flag(query, "watch"):
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


def _selector(rtype: ResourceType, query: dict[str, list[str]]) -> Callable[[Obj], bool]:
    try:
        labels = parse_label_selector(_param(query, "labelSelector"))
        fields = parse_field_selector(_param(query, "fieldSelector"), rtype.field_selectors)
    except SelectorError as exc:
        raise ApiError(400, f"unable to parse selector: {exc}") from exc
    return lambda obj: labels(obj["metadata"].get("labels") or {}) and fields(obj)


def _discovery_groups() -> Obj:
    groups = []
    for group, versions in apiresources.groups().items():
        if not group:
            continue
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _discovery_resources(group: str, version: str) -> Obj:
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


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: ApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-request (an agent process in a crash test) is normal here."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            log.debug("client %s went away: %s", client_address, exc)
            return
        log.exception("API stand-in: unexpected error serving %s", client_address)


class ApiServer:
    """The API stand-in: start it, point clients at `.url`, seed and inspect with the helpers.

    Thread-safe. `watch_timeout` bounds watches that send no timeoutSeconds;
    `bookmark_interval` paces BOOKMARK events for watches that allow them; `history_limit`
    is how many events a watch can resume across before it gets 410 Gone.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        history_limit: int = 10000,
        watch_timeout: float = 1800.0,
        bookmark_interval: float = 5.0,
    ) -> None:
        self.host, self.port = host, port
        self.store = ApiStore(history_limit=history_limit)
        self.watch_timeout = watch_timeout
        self.bookmark_interval = bookmark_interval
        self.stopping = False
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._audit: list[AuditRecord] = []
        self._faults: list[Fault] = []
        self._connections: set[socket.socket] = set()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ApiServer:
        if self._httpd is not None:
            raise RuntimeError("ApiServer already started")
        self._httpd = _HttpServer((self.host, self.port), _Handler)
        self._httpd.api = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"kube-api-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("Kubernetes API stand-in listening on %s", self.url)
        return self

    def stop(self) -> None:
        """End every watch stream and connection, then the listener."""
        if self._httpd is None:
            return
        self.stopping = True
        self.store.close()
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- clients ---------------------------------------------------------------------------

    def api_client(self, user_agent: str = "kubeos-test/0") -> client.ApiClient:
        """An official-client ApiClient pointed here; the user agent shows up in the audit."""
        cfg = client.Configuration()
        cfg.host = self.url
        api = client.ApiClient(cfg)
        api.user_agent = user_agent
        return api

    def write_kubeconfig(self, path: str | Path) -> Path:
        """A kubeconfig for this server (for kubectl, or config.load_kube_config)."""
        path = Path(path)
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sim", "cluster": {"server": self.url}}],
            "users": [{"name": "sim", "user": {}}],
            "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "sim"}}],
            "current-context": "sim",
        }
        path.write_text(json.dumps(cfg, indent=2))  # JSON is valid YAML
        return path

    # -- seeding and inspection (no HTTP, not audited) ------------------------------------

    def create(self, resource: str, obj: Obj, namespace: str | None = None) -> Obj:
        """Create an object directly; namespace defaults to metadata.namespace or "default".

        Unlike a POST, an object as read back (with a resourceVersion) is accepted: the
        server-managed metadata is replaced anyway.
        """
        rtype = resolve(resource)
        meta = dict(obj.get("metadata") or {})
        meta.pop("resourceVersion", None)
        ns = namespace or meta.get("namespace") or "default"
        return self.store.create(rtype, ns if rtype.namespaced else "", {**obj, "metadata": meta})

    def install_crds(self, *paths: str | Path) -> list[str]:
        """Store the CustomResourceDefinitions in these YAML files (create or replace).

        From then on the custom resources they define are pruned, defaulted and validated
        against their schema and CEL rules on every write, as on a real server (apischema).
        """
        crds = resolve("customresourcedefinitions")
        names = []
        for path in paths:
            for doc in yaml.safe_load_all(Path(path).read_text()):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                name = doc["metadata"]["name"]
                try:
                    current = self.store.get(crds, "", name)
                except ApiError:
                    self.store.create(crds, "", doc)
                else:
                    doc["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                    self.store.replace(crds, "", name, doc)
                names.append(name)
        return names

    def get(self, resource: str, name: str, namespace: str = "default") -> Obj:
        return self.store.get(resolve(resource), namespace, name)

    def list(self, resource: str, namespace: str | None = None) -> list[Obj]:
        return self.store.list(resolve(resource), namespace)[0]

    def replace(self, resource: str, obj: Obj, *, status: bool = False) -> Obj:
        """PUT semantics (status=True writes the status subresource)."""
        rtype, meta = resolve(resource), obj.get("metadata") or {}
        return self.store.replace(
            rtype,
            meta.get("namespace") or "default",
            meta["name"],
            obj,
            subresource="status" if status else None,
        )

    def patch(
        self,
        resource: str,
        name: str,
        patch: Obj,
        namespace: str = "default",
        *,
        status: bool = False,
    ) -> Obj:
        """A JSON merge patch (status=True patches the status subresource)."""
        return self.store.patch(
            resolve(resource),
            namespace,
            name,
            "application/merge-patch+json",
            patch,
            subresource="status" if status else None,
        )

    def delete(self, resource: str, name: str, namespace: str = "default") -> Obj:
        return self.store.delete(resolve(resource), namespace, name)

    def wait_for(
        self,
        resource: str,
        predicate: Callable[[list[Obj]], Any],
        namespace: str | None = None,
        timeout: float = 10.0,
    ) -> Any:
        """Block until predicate(all objects of the resource) is truthy; returns its value."""
        return self.store.wait_for(resolve(resource), predicate, namespace, timeout)

    def compact(self) -> None:
        """Drop the event history: watches resuming from before now get 410 Gone."""
        self.store.compact()

    # -- fault injection and audit ---------------------------------------------------------

    def inject_fault(
        self,
        verb: str,
        resource: str,
        status: int,
        *,
        count: int = 1,
        retry_after: float | None = None,
        subresource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        message: str = "injected fault",
    ) -> Fault:
        """Make the next `count` matching requests fail with `status` (G2 retry tests)."""
        fault = Fault(
            verb, resource, status, count, retry_after, subresource, namespace, name, message
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def audit(self) -> list[AuditRecord]:
        """Every resource request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._audit)

    def clear_audit(self) -> None:
        with self._lock:
            self._audit.clear()

    # -- request handling (called from handler threads) -----------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _record(self, rec: AuditRecord) -> None:
        with self._lock:
            self._audit.append(rec)

    def _raise_fault(self, rec: AuditRecord) -> None:
        with self._lock:
            fault = next((f for f in self._faults if f.matches(rec)), None)
            if fault is None:
                return
            fault.remaining -= 1
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(fault.retry_after))  # whole seconds (RFC 9110)
        raise ApiError(fault.status, fault.message, headers=headers)

    def _handle(
        self, verb: str, route: Route, query: dict[str, list[str]], body: Any, content_type: str
    ) -> tuple[int, Any]:
        rtype, ns, name, sub = route.rtype, route.namespace, route.name, route.subresource
        dry_run = bool(query.get("dryRun"))
        store = self.store
        if verb == "get":
            return 200, store.get(rtype, ns, name)
        if verb == "list":
            return 200, self._list(rtype, ns, query)
        if verb == "create" and sub == "eviction":
            self._check_eviction_body(name, ns, body)
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
            return 201, store.create(rtype, ns, body, dry_run=dry_run)
        if verb == "update":
            return 200, store.replace(
                rtype, ns, name, body, subresource=sub or None, dry_run=dry_run
            )
        if verb == "patch":
            if body is None:
                raise ApiError(400, "a PATCH needs a body")
            return 200, store.patch(
                rtype, ns, name, content_type, body, subresource=sub or None, dry_run=dry_run
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
            match = _selector(rtype, query)
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
            return 200, self._list_body(rtype, deleted, store.resource_version)
        raise ApiError(405, f"verb {verb} is not supported")

    def _list(self, rtype: ResourceType, ns: str, query: dict[str, list[str]]) -> Obj:
        items, rv = self.store.list(rtype, ns or None, _selector(rtype, query))
        body = self._list_body(rtype, items, rv)
        token = _param(query, "continue")
        if token:
            after = _decode_continue(token)
            items = [
                i
                for i in items
                if (i["metadata"].get("namespace", ""), i["metadata"]["name"]) > after
            ]
        limit = int(_param(query, "limit") or 0)
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            body["metadata"]["continue"] = _encode_continue(last.get("namespace", ""), last["name"])
            body["metadata"]["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        body["items"] = items
        return body

    @staticmethod
    def _list_body(rtype: ResourceType, items: list[Obj], rv: str) -> Obj:
        return {
            "kind": f"{rtype.kind}List",
            "apiVersion": rtype.api_version,
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    @staticmethod
    def _check_eviction_body(name: str, namespace: str, body: Any) -> None:
        if body is None:
            return
        if not isinstance(body, dict) or body.get("kind") not in (None, "Eviction"):
            raise ApiError(400, "the eviction body must be a policy/v1 Eviction")
        meta = body.get("metadata") or {}
        if meta.get("name") not in (None, "", name):
            raise ApiError(400, "name in URL does not match name in Eviction object")
        if meta.get("namespace") not in (None, "", namespace):
            raise ApiError(400, "namespace in URL does not match namespace in Eviction object")


__all__ = ["ApiError", "ApiServer", "AuditRecord", "Fault"]
