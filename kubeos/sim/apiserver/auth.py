"""Optional HTTPS and bearer-token authentication for the API stand-in, so that clients can
take the same path as in production: a kubeconfig with the cluster CA and a token.

TLS material comes from trustme (the `sim` extra): a throw-away CA and a server certificate
for 127.0.0.1/localhost, written to a private temporary directory while the server runs.
There is no authorization: a known token only names the caller (recorded in the audit).
"""

from __future__ import annotations

import secrets
import shutil
import ssl
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from kubeos.sim.apiserver.errors import ApiError

ANONYMOUS = "system:anonymous"


class TokenAuthenticator:
    """Bearer token -> user name. Without any token registered, every caller is anonymous."""

    def __init__(self, tokens: Mapping[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._tokens = dict(tokens or {})

    @property
    def required(self) -> bool:
        with self._lock:
            return bool(self._tokens)

    def add(self, user: str, token: str | None = None) -> str:
        """Register `user`; returns its token (a fresh random one unless given)."""
        token = token or secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = user
        return token

    def authenticate(self, header: str | None) -> str:
        """The user behind an Authorization header; 401 when tokens are required and the
        header is missing or unknown (compared in constant time)."""
        with self._lock:
            tokens = dict(self._tokens)
        if not tokens:
            return ""
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() == "bearer" and token:
            for known, user in tokens.items():
                if secrets.compare_digest(known.encode(), token.strip().encode()):
                    return user
        raise ApiError(401, "Unauthorized", reason="Unauthorized")


class TlsMaterial:
    """A throw-away CA and a server certificate for 127.0.0.1, localhost and ::1."""

    def __init__(self) -> None:
        try:
            import trustme
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "ApiServer(tls=True) needs trustme: pip install 'kubeos[sim]'"
            ) from exc
        self._dir = Path(tempfile.mkdtemp(prefix="kubeos-api-tls-"))
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
        self.ca_pem: bytes = ca.cert_pem.bytes()
        self.ca_file = self._dir / "ca.crt"
        self.ca_file.write_bytes(self.ca_pem)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.context)

    def cleanup(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
