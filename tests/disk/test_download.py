"""The image_disk transfer itself: retries, resume, redirects, limits (real HTTPS server)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from kubeos_image_disk import SpoolWriter
from kubeos_image_disk.download import RetryPolicy, download
from kubeos_image_disk.source import TransferPolicy, redacted, transfer_policy

from kubeos.contracts import NodeContext
from kubeos.errors import ImageError
from tests.disk.helpers import upgrade_spec
from tests.support.https import Certs, ImageServer

FAST = RetryPolicy(attempts=3, backoff=0.01, read_timeout=5)
PAYLOAD = os.urandom(3 * 1024 * 1024 + 123)


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    p = tmp_path / "blob.img"
    p.write_bytes(PAYLOAD)
    return p


def policy_for(srv: ImageServer, certs: Certs, tmp_path: Path, path: str = "x") -> TransferPolicy:
    ca = certs.ca_file(tmp_path / "ca.pem")
    cert, key = certs.client_files(tmp_path)
    return TransferPolicy(srv.url(path), str(ca), (str(cert), str(key)))


def fetch(policy: TransferPolicy, tmp_path: Path, limit: int = 1 << 30) -> tuple[bytes, str]:
    out = tmp_path / "out.img"
    sink = SpoolWriter(out)
    try:
        result = download(policy, sink, limit, None, FAST)
    finally:
        sink.close()
    return out.read_bytes(), result.sha256


def test_transient_5xx_is_retried(tmp_path: Path, certs: Certs, blob: Path) -> None:
    with ImageServer({"x": blob}, certs=certs, statuses=[503, 502]) as srv:
        data, digest = fetch(policy_for(srv, certs, tmp_path), tmp_path)
    assert data == PAYLOAD and digest == hashlib.sha256(PAYLOAD).hexdigest()
    assert len(srv.requests) == 3


def test_persistent_5xx_gives_up(tmp_path: Path, certs: Certs, blob: Path) -> None:
    with (
        ImageServer({"x": blob}, certs=certs, statuses=[503] * 10) as srv,
        pytest.raises(ImageError, match="HTTP 503"),
    ):
        fetch(policy_for(srv, certs, tmp_path), tmp_path)
    assert len(srv.requests) == FAST.attempts


def test_wrong_content_range_restarts_from_zero(tmp_path: Path, certs: Certs, blob: Path) -> None:
    """A 206 that does not start where we stopped is not trusted: restart, rehash."""
    with ImageServer(
        {"x": blob}, certs=certs, fail_after=1 << 20, failures=1, bad_range=True
    ) as srv:
        data, digest = fetch(policy_for(srv, certs, tmp_path), tmp_path)
    assert data == PAYLOAD and digest == hashlib.sha256(PAYLOAD).hexdigest()
    assert [r.range for r in srv.requests] == [None, f"bytes={1 << 20}-", None]


def test_spool_resume_gives_the_same_bytes(tmp_path: Path, certs: Certs, blob: Path) -> None:
    with ImageServer({"x": blob}, certs=certs, fail_after=700_000, failures=3) as srv:
        data, digest = fetch(policy_for(srv, certs, tmp_path), tmp_path)
    assert data == PAYLOAD and digest == hashlib.sha256(PAYLOAD).hexdigest()
    assert len(srv.requests) == 4


def test_redirect_from_https_to_http_is_refused(tmp_path: Path, certs: Certs, blob: Path) -> None:
    with (
        ImageServer({"x": blob}) as plain,
        ImageServer({"x": blob}, certs=certs, redirects={"moved": plain.url("x")}) as srv,
        pytest.raises(ImageError, match=r"not https \[D2\]"),
    ):
        fetch(policy_for(srv, certs, tmp_path, "moved"), tmp_path)
    assert plain.requests == []  # nothing was fetched from the plain-http server


def test_redirect_within_https_is_followed(tmp_path: Path, certs: Certs, blob: Path) -> None:
    with ImageServer({"x": blob}, certs=certs) as srv:
        srv.redirects["old"] = srv.url("x")
        data, _ = fetch(policy_for(srv, certs, tmp_path, "old"), tmp_path)
    assert data == PAYLOAD


def test_empty_image_is_refused(tmp_path: Path, certs: Certs) -> None:
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    with (
        ImageServer({"x": empty}, certs=certs) as srv,
        pytest.raises(ImageError, match="empty image"),
    ):
        fetch(policy_for(srv, certs, tmp_path), tmp_path)


def test_limit_is_enforced_on_the_stream(tmp_path: Path, certs: Certs, blob: Path) -> None:
    with (
        ImageServer({"x": blob}, certs=certs, send_length=False) as srv,
        pytest.raises(ImageError, match="larger than the target"),
    ):
        fetch(policy_for(srv, certs, tmp_path), tmp_path, limit=1 << 20)


def test_urls_are_logged_without_credentials() -> None:
    """G7: user info and query strings (tokens) never reach the log."""
    assert (
        redacted("https://user:secret@images.example:8443/os.img?token=abc")
        == "https://images.example:8443/os.img"
    )


def test_mtls_without_client_key_name_is_refused(tmp_path: Path, certs: Certs) -> None:
    node = NodeContext(host_root=tmp_path)
    fields = certs.install(node.certs_dir)
    spec = upgrade_spec("https://127.0.0.1/x", "0" * 64, "v", mtls=True, **fields)
    spec = type(spec)(**{**spec.__dict__, "clientkey": ""})
    with pytest.raises(ImageError, match=r"spec.clientkey: is required \[D3\]"):
        transfer_policy(spec, node)
    ok = upgrade_spec("https://127.0.0.1/x", "0" * 64, "v", mtls=True, **fields)
    policy = transfer_policy(ok, node)
    assert policy.client_cert is not None
    assert policy.verify == str((node.certs_dir / "ca.crt").resolve())


class FullDisk:
    """A sink whose medium is full after 1 MiB, like a spool directory out of space."""

    def __init__(self) -> None:
        self.pos = 0

    def seek(self, pos: int) -> None:
        self.pos = pos

    def write(self, data: bytes | memoryview) -> None:
        if self.pos + len(data) > 1 << 20:
            raise OSError(28, "No space left on device")
        self.pos += len(data)


def test_a_local_write_error_is_not_retried(tmp_path: Path, certs: Certs, blob: Path) -> None:
    with (
        ImageServer({"x": blob}, certs=certs) as srv,
        pytest.raises(ImageError, match="No space left on device"),
    ):
        download(policy_for(srv, certs, tmp_path), FullDisk(), 1 << 30, None, FAST)
    assert len(srv.requests) == 1
