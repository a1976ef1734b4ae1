"""The simulation's image server: HTTPS on 127.0.0.1 with a trustme CA and mutual TLS.

Each simulated node gets its own client certificate (common name = node name), so the
server knows which node is downloading. That is what lets a test make one node receive
different bytes than the others (`corrupt_for`) - a bad download on one machine - while
the OS object, with its single imageurl and checksum, stays the same for all.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

log = logging.getLogger(__name__)
CHUNK = 1 << 20


@dataclass
class NodeCerts:
    """The file names an OS object uses (cacert, clientcert, clientkey) - D3."""

    cacert: str = "ca.crt"
    clientcert: str = "client.crt"
    clientkey: str = "client.key"


@dataclass
class ImageServer:
    """Serves files under `root` by URL path; start() / stop() or use as a context manager."""

    root: Path
    ca: trustme.CA = field(default_factory=trustme.CA)
    names: NodeCerts = field(default_factory=NodeCerts)
    #: client common name -> bytes served instead of the real file (a corrupted copy).
    overrides: dict[str, bytes] = field(default_factory=dict)
    #: client common name -> seconds to stall before answering (a slow link).
    delays: dict[str, float] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (client CN, path)

    def __post_init__(self) -> None:
        self._httpd: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # -- certificates ----------------------------------------------------------------
    def install_node_certs(self, certs_dir: Path, node: str) -> None:
        """CA and this node's own client certificate/key (key mode 0600, G3)."""
        certs_dir.mkdir(parents=True, exist_ok=True)
        leaf = self.ca.issue_cert(f"{node}.nodes.kubeos.sim", common_name=node)
        self.ca.cert_pem.write_to_path(str(certs_dir / self.names.cacert))
        leaf.cert_chain_pems[0].write_to_path(str(certs_dir / self.names.clientcert))
        key = certs_dir / self.names.clientkey
        leaf.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)

    def corrupt_for(self, node: str, path: str) -> None:
        """Serve `node` a copy of `path` with flipped bytes (same size): a bad download."""
        data = bytearray(self._file(path).read_bytes())
        for i in range(0, len(data), 4096):
            data[i] ^= 0xFF
        self.overrides[node] = bytes(data)

    # -- serving ---------------------------------------------------------------------
    def _file(self, path: str) -> Path:
        rel = path.split("?", 1)[0].lstrip("/")
        target = (self.root / rel).resolve()
        if not target.is_relative_to(self.root.resolve()) or not target.is_file():
            raise FileNotFoundError(path)
        return target

    def url(self, path: str) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"https://127.0.0.1:{self._httpd.server_address[1]}/{path.lstrip('/')}"

    def start(self) -> ImageServer:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        self.ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED  # mTLS: every node presents its certificate
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                log.debug("image server: " + format, *args)

            def do_GET(self) -> None:
                peer = self.connection.getpeercert() or {}
                cn = next(
                    (v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"),
                    "",
                )
                with server._lock:
                    server.requests.append((cn, self.path))
                time.sleep(server.delays.get(cn, 0.0))
                try:
                    data = server.overrides.get(cn)
                    path = server._file(self.path)
                except FileNotFoundError:
                    self.send_error(404)
                    return
                size = len(data) if data is not None else path.stat().st_size
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                if data is not None:
                    self.wfile.write(data)
                    return
                with open(path, "rb") as f:
                    while chunk := f.read(CHUNK):
                        self.wfile.write(chunk)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, name="sim-image-server", daemon=True).start()
        log.info("image server on https://127.0.0.1:%d (mTLS)", httpd.server_address[1])
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @contextmanager
    def running(self) -> Iterator[ImageServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()
