"""The HTTP layer of the API stand-in: framing, bodies, watch streaming, connection
lifecycle. What a request means is rest.py's job; who asked is recorded in the audit log."""

from __future__ import annotations

import contextlib
import json
import logging
import select
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from kubeos.sim.apiserver import openapi as apiopenapi
from kubeos.sim.apiserver import rest as apirest
from kubeos.sim.apiserver import table as apitable
from kubeos.sim.apiserver.audit import AuditLog, AuditRecord
from kubeos.sim.apiserver.auth import TokenAuthenticator
from kubeos.sim.apiserver.errors import ApiError
from kubeos.sim.apiserver.store import ApiStore

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024
#: Served without authentication, as a real server's default RBAC does.
PUBLIC_PATHS = ("/healthz", "/readyz", "/livez", "/version")
HANDSHAKE_TIMEOUT = 10.0


class Backend(Protocol):
    """What the HTTP layer needs from the server object."""

    store: ApiStore
    audit_log: AuditLog
    authenticator: TokenAuthenticator
    watch_timeout: float
    bookmark_interval: float
    stopping: bool

    def authorize(self, record: AuditRecord) -> None:
        """Raise 403 when the caller may not do this."""


class ApiRequestHandler(BaseHTTPRequestHandler):
    """One connection: HTTP/1.1 keep-alive, JSON bodies, chunked watch streams."""

    protocol_version = "HTTP/1.1"
    server: ApiHttpServer

    # -- plumbing --------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def setup(self) -> None:
        super().setup()
        # Small header and body writes must not wait for delayed ACKs (40 ms per request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

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
        """False once the client hung up (checked while a watch waits for events).

        A watch client sends nothing after its request, so readable means closing; TLS
        sockets cannot peek, so they read (and drop) what came.
        """
        conn = self.connection
        try:
            readable, _, _ = select.select([conn], [], [], 0)
            if not readable:
                return True
            if not isinstance(conn, ssl.SSLSocket):
                return conn.recv(1, socket.MSG_PEEK) != b""
            conn.setblocking(False)
            try:
                return conn.recv(1) != b""
            except (ssl.SSLWantReadError, BlockingIOError):
                return True
            finally:
                conn.setblocking(True)
        except OSError:
            return False

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
        route = apirest.parse_route(url.path)
        try:
            user = ""
            if url.path.rstrip("/") not in PUBLIC_PATHS:
                user = api.authenticator.authenticate(self.headers.get("Authorization"))
            if not isinstance(route, apirest.Route):
                self._non_resource(method, url.path, route)
                return
            verb = apirest.verb_for(method, route, query)
            record = AuditRecord(
                self.headers.get("User-Agent", ""),
                verb,
                route.rtype.group,
                route.rtype.version,
                route.rtype.plural,
                route.subresource,
                route.namespace,
                route.name,
                user,
            )
            api.audit_log.record(record)
            api.authorize(record)
            api.audit_log.raise_fault(record)
            if verb == "watch":
                self._watch(route, query)
            else:
                code, result = apirest.handle(
                    api.store,
                    verb,
                    route,
                    query,
                    body,
                    self._content_type(),
                    self.headers.get("Accept"),
                )
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
            self._send_json(200, apirest.discovery_resources(*route))
        elif path.rstrip("/") == "/api":
            self._send_json(200, {"kind": "APIVersions", "versions": ["v1"]})
        elif path.rstrip("/") == "/apis":
            self._send_json(200, apirest.discovery_groups())
        elif path.rstrip("/") == "/openapi/v3":
            self._send_json(200, apiopenapi.root())
        elif path.startswith("/openapi/v3/"):
            self._send_json(200, apiopenapi.gv_document(path[len("/openapi/v3/") :]))
        elif path.rstrip("/") == "/version":
            self._send_json(200, apirest.SERVER_VERSION)
        elif path.rstrip("/") in ("/healthz", "/readyz", "/livez"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            raise ApiError(404, f"the server could not find the requested resource ({path})")

    def _send_chunk(self, event: Any) -> None:
        line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
        self.wfile.flush()

    def _watch(self, route: apirest.Route, query: dict[str, list[str]]) -> None:
        api = self.server.api
        match = apirest.selector(route.rtype, query)
        timeout = api.watch_timeout
        if (raw := apirest.param(query, "timeoutSeconds")) is not None:
            try:
                # The server's limit still applies, as a proxy in front of a real one would.
                timeout = min(float(int(raw)), api.watch_timeout)
            except ValueError as exc:
                raise ApiError(400, f"invalid timeoutSeconds {raw!r}") from exc
        if route.name:  # a watch on one object: fieldSelector=metadata.name=<name>
            inner, name = match, route.name
            match = lambda obj: obj["metadata"].get("name") == name and inner(obj)  # noqa: E731
        events = api.store.watch(
            route.rtype,
            route.namespace or None,
            match,
            apirest.param(query, "resourceVersion"),
            timeout=timeout,
            alive=self._alive,
            bookmark_every=api.bookmark_interval
            if apirest.flag(query, "allowWatchBookmarks")
            else None,
        )
        table_version = apitable.wanted(self.headers.get("Accept"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            try:
                for event in events:
                    if table_version and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        obj = event["object"]
                        table = apirest.as_table(
                            api.store, table_version, route.rtype, [obj], obj["metadata"], query
                        )
                        event = {"type": event["type"], "object": table}
                    self._send_chunk(event)
            except OSError:
                raise
            except Exception as exc:  # headers are out: end the stream with an ERROR event
                log.exception("API stand-in: watch %s failed", self.path)
                self._send_chunk(
                    {"type": "ERROR", "object": ApiError(500, f"internal error: {exc}").status()}
                )
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return
        if api.stopping:
            self.close_connection = True


class ApiHttpServer(ThreadingHTTPServer):
    """The listener; tracks open connections so that stop() can cut them."""

    daemon_threads = True
    allow_reuse_address = True
    api: Backend

    def __init__(
        self, address: tuple[str, int], backend: Backend, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(address, ApiRequestHandler)
        self.api = backend
        self.tls = tls
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()

    def track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def cut_connections(self) -> None:
        """Shut every open connection down (idle keep-alives and watch streams)."""
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Serve one connection; with TLS, the handshake happens here, in the connection's
        own thread, bounded by HANDSHAKE_TIMEOUT (a silent client holds no listener)."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        conn.settimeout(None)
        try:
            super().finish_request(conn, client_address)
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-request (an agent process in a crash test) is normal here."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            log.debug("client %s went away: %s", client_address, exc)
            return
        log.exception("API stand-in: unexpected error serving %s", client_address)
