"""A real HTTP(S) image server on 127.0.0.1 with trustme certificates, for tests and bench.

`ImageServer` serves files by URL path with Range support, optional mTLS (client
certificate REQUIRED), and injectable faults: drop the connection after N bytes for the
first K requests (`fail_after`, `failures`), ignore Range (`honour_range=False`), answer
Range with a wrong Content-Range (`bad_range`), send no Content-Length
(`send_length=False`), answer error statuses first (`statuses=[503]`) or redirect
(`redirects={"a.img": "http://..."}`). It records every request's path and Range.

`Certs` makes a CA, a server certificate for 127.0.0.1/localhost and a client
certificate, and installs them into a node's certs directory with key mode 0600.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import trustme

CHUNK = 1024 * 1024


@dataclass
class Certs:
    """A CA with one server and one client certificate (all from trustme)."""

    ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        self.server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.client = self.ca.issue_cert("kubeos-node@example.internal")

    def install(
        self,
        certs_dir: Path,
        ca: str = "ca.crt",
        cert: str = "client.crt",
        key: str = "client.key",
        key_mode: int = 0o600,
    ) -> dict[str, str]:
        """Write CA, client cert and key into `certs_dir`; return the OS spec fields."""
        certs_dir.mkdir(parents=True, exist_ok=True)
        self.ca.cert_pem.write_to_path(str(certs_dir / ca))
        self.client.cert_chain_pems[0].write_to_path(str(certs_dir / cert))
        self.client.private_key_pem.write_to_path(str(certs_dir / key))
        (certs_dir / key).chmod(key_mode)
        return {"cacert": ca, "clientcert": cert, "clientkey": key}

    def ca_file(self, path: Path) -> Path:
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def client_files(self, directory: Path) -> tuple[Path, Path]:
        cert, key = directory / "bench-client.crt", directory / "bench-client.key"
        self.client.cert_chain_pems[0].write_to_path(str(cert))
        self.client.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)
        return cert, key


@dataclass
class Seen:
    path: str
    range: str | None
    client_cert: bool


class ImageServer:
    """Serve `files` (URL path -> file) on 127.0.0.1; use as a context manager."""

    def __init__(
        self,
        files: dict[str, Path],
        certs: Certs | None = None,
        require_client_cert: bool = True,
        fail_after: int | None = None,
        failures: int = 0,
        honour_range: bool = True,
        send_length: bool = True,
        statuses: list[int] | None = None,
        redirects: dict[str, str] | None = None,
        bad_range: bool = False,
    ) -> None:
        self.files = dict(files)
        self.certs = certs
        self.require_client_cert = require_client_cert
        self.fail_after = fail_after
        self.failures_left = failures
        self.honour_range = honour_range
        self.send_length = send_length
        #: answer the first requests with these statuses (e.g. [503]) before serving
        self.statuses = list(statuses or [])
        #: URL path -> Location for a 302
        self.redirects = dict(redirects or {})
        #: answer Range requests with a 206 whose Content-Range starts at 0 (a buggy server)
        self.bad_range = bad_range
        self.requests: list[Seen] = []
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> ImageServer:
        handler = _make_handler(self)
        httpd = _QuietServer(("127.0.0.1", 0), handler)
        if self.certs is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.certs.server.configure_cert(ctx)
            if self.require_client_cert:
                self.certs.ca.configure_trust(ctx)
                ctx.verify_mode = ssl.CERT_REQUIRED
            httpd.socket = ctx.wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> ImageServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    def url(self, path: str) -> str:
        scheme = "https" if self.certs is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def _take_failure(self) -> int | None:
        with self._lock:
            if self.fail_after is not None and self.failures_left > 0:
                self.failures_left -= 1
                return self.fail_after
        return None


_RANGE = re.compile(r"^bytes=(\d+)-$")


class _QuietServer(ThreadingHTTPServer):
    """Refused handshakes and dropped clients are what the tests provoke: no tracebacks."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return


def _make_handler(server: ImageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            if isinstance(self.request, ssl.SSLSocket):
                self.request.settimeout(30)
                try:
                    self.request.do_handshake()
                except (ssl.SSLError, OSError):
                    with contextlib.suppress(OSError):
                        self.request.close()
                    raise
            super().setup()

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].lstrip("/")
            rng = self.headers.get("Range")
            has_cert = isinstance(self.connection, ssl.SSLSocket) and bool(
                self.connection.getpeercert()
            )
            server.requests.append(Seen(path, rng, has_cert))
            with server._lock:
                status = server.statuses.pop(0) if server.statuses else None
            if status is not None:
                self.send_error(status)
                return
            if path in server.redirects:
                self.send_response(302)
                self.send_header("Location", server.redirects[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            file = server.files.get(path)
            if file is None:
                self.send_error(404)
                return
            size = file.stat().st_size
            start = 0
            m = _RANGE.match(rng or "")
            if rng and server.bad_range:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes 0-{size - 1}/{size}")
            elif rng and server.honour_range and m and int(m.group(1)) < size:
                start = int(m.group(1))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes" if server.honour_range else "none")
            if server.send_length:
                self.send_header("Content-Length", str(size - start))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            cut = server._take_failure()
            sent = 0
            with open(file, "rb") as f:
                f.seek(start)
                while chunk := f.read(CHUNK):
                    if cut is not None and sent + len(chunk) >= cut:
                        self.wfile.write(chunk[: max(0, cut - sent)])
                        self.wfile.flush()
                        server.bytes_sent += max(0, cut - sent)
                        self._drop()
                        return
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    server.bytes_sent += len(chunk)

        def _drop(self) -> None:
            """Die mid-transfer: close the socket under the client's feet."""
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler
