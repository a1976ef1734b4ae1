"""Decide how an image URL may be fetched: D1-D3 and G3, checked before any byte moves.

http is allowed only with flagSafe=true (D2). https trusts exactly the CA file named by
`cacert` in the node's certs directory (D3); with mtls the client certificate and key
from the same directory are presented. Names are file names in that directory: nothing
may point outside it, and a key readable by group or others is refused (G3).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubeos.contracts import NodeContext
from kubeos.errors import ImageError
from kubeos.models.os import OSSpec


class Refused(ImageError):
    """A failure retrying cannot fix: a refused source, not found, too big, TLS rejected."""


@dataclass(frozen=True)
class TransferPolicy:
    url: str
    #: CA bundle path for https, False for plain http (flagSafe).
    verify: str | bool
    #: (certificate, key) presented for mtls, else None.
    client_cert: tuple[str, str] | None = None

    @property
    def secure(self) -> bool:
        return self.verify is not False


def redacted(url: str) -> str:
    """The URL without user info or query (they may carry credentials: never logged, G7)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def cert_file(node: NodeContext, field: str, name: str, *, secret: bool = False) -> str:
    """The path of certs-dir file `name` (spec field `field`); refuse escapes and loose keys."""
    if not name:
        raise ImageError(f"spec.{field}: is required [D3]")
    if name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ImageError(f"spec.{field}: {name!r} must be a file name inside the certs dir [D3]")
    base = node.certs_dir
    path = base / name
    try:
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise ImageError(f"spec.{field}: {name!r} not found in {base} [D3]") from None
    if not resolved.is_relative_to(base.resolve()):
        raise ImageError(f"spec.{field}: {name!r} points outside {base} [D3]")
    st = os.stat(resolved)
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"spec.{field}: {path} is not a regular file [D3]")
    if secret and st.st_mode & 0o077:
        raise ImageError(
            f"spec.{field}: key file {path} is readable by group or others"
            f" (mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it [G3]"
        )
    return str(resolved)


def transfer_policy(spec: OSSpec, node: NodeContext) -> TransferPolicy:
    """How to fetch `spec.imageurl`, or ImageError naming the field and rule."""
    url = spec.imageurl
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageError(f"spec.imageurl: {redacted(url)!r} must be http(s)://host/... [D1]")
    if parts.scheme == "http":
        if not spec.flagSafe:
            raise ImageError(
                "spec.imageurl: http address is unsafe, image not downloaded:"
                " use https or set flagSafe: true [D2]"
            )
        return TransferPolicy(url, False)
    ca = cert_file(node, "cacert", spec.cacert)
    client: tuple[str, str] | None = None
    if spec.mtls:
        client = (
            cert_file(node, "clientcert", spec.clientcert),
            cert_file(node, "clientkey", spec.clientkey, secret=True),
        )
    return TransferPolicy(url, ca, client)


def check_redirect(policy: TransferPolicy, location: str) -> None:
    """Refuse a redirect that leaves https (it would bypass D2/D3) or http(s) altogether."""
    scheme = urlsplit(location).scheme
    if scheme not in ("http", "https") or (policy.secure and scheme != "https"):
        raise Refused(
            f"spec.imageurl: server redirected to {redacted(location)!r}, which is not https [D2]"
        )
