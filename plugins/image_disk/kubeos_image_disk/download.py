"""Stream an image over HTTP(S) into a sink, hashing as it goes, resuming broken transfers.

One pass: each chunk is hashed and written before the next is read, so memory use is one
chunk whatever the image size. A broken transfer is resumed with an HTTP Range request;
only a 206 whose Content-Range starts exactly where we stopped is accepted, anything else
restarts from byte 0 (the hash is restarted with it). An image larger than `limit` is
refused from its Content-Length before a byte is written, and again if the stream passes
the limit.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin

import requests
import urllib3

from kubeos import __version__
from kubeos.contracts import NodeContext
from kubeos.errors import ImageError
from kubeos_image_disk.source import Refused, TransferPolicy, check_redirect, redacted

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
MAX_REDIRECTS = 5
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_TRANSIENT = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


class Sink(Protocol):
    def seek(self, pos: int) -> None: ...
    def write(self, data: bytes | memoryview) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    #: consecutive attempts without progress before giving up
    attempts: int = 5
    #: first pause between attempts in seconds; doubles each time, capped at 30 s
    backoff: float = 1.0
    connect_timeout: float = 15.0
    #: seconds without a byte from the server before the attempt counts as broken
    read_timeout: float = 60.0

    @classmethod
    def from_extras(cls, extras: dict[str, str]) -> RetryPolicy:
        """Site overrides: node.extras image_disk.attempts/backoff/connect_timeout/read_timeout."""
        d = cls()
        try:
            return cls(
                attempts=max(1, int(extras.get("image_disk.attempts", d.attempts))),
                backoff=max(0.0, float(extras.get("image_disk.backoff", d.backoff))),
                connect_timeout=float(extras.get("image_disk.connect_timeout", d.connect_timeout)),
                read_timeout=float(extras.get("image_disk.read_timeout", d.read_timeout)),
            )
        except ValueError as exc:
            raise ImageError(f"node extras image_disk.*: {exc}") from exc


@dataclass
class Result:
    size: int
    sha256: str


def _too_big(size: int, limit: int) -> Refused:
    return Refused(
        f"image of {size} bytes is larger than the target root partition ({limit} bytes);"
        " nothing was written"
    )


def root_cause(exc: BaseException) -> BaseException:
    """The innermost error of requests/urllib3 wrappers (MaxRetryError -> SSLError -> ...)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in exc.args if isinstance(a, BaseException)), None)
        if inner is None:
            inner = exc.__cause__
        if inner is None:
            break
        exc = inner
    return exc


def _tls_error(policy: TransferPolicy, exc: BaseException) -> Refused:
    what = "mTLS" if policy.client_cert else "TLS"
    cause = root_cause(exc)
    return Refused(
        f"{what} with {redacted(policy.url)} failed: {type(cause).__name__}: {cause}"
        f" (check spec.cacert"
        f"{', spec.clientcert, spec.clientkey' if policy.client_cert else ''}) [D3]"
    )


class Transfer:
    """One image download: the state that survives between resumed attempts."""

    def __init__(
        self,
        policy: TransferPolicy,
        sink: Sink,
        limit: int,
        node: NodeContext | None = None,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.policy, self.sink, self.limit, self.node = policy, sink, limit, node
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = f"kubeos-agent/{__version__}"
        self.url = policy.url  # where the bytes come from after redirects
        self.hash = hashlib.sha256()
        self.done = 0
        self.total: int | None = None
        self.restarts = 0

    def _restart(self) -> None:
        self.hash = hashlib.sha256()
        self.done = 0
        self.sink.seek(0)
        self.restarts += 1

    def _open(self) -> requests.Response:
        """GET the image (from `done` on); redirects are followed by hand, each checked."""
        headers = {"Accept-Encoding": "identity"}
        if self.done:
            headers["Range"] = f"bytes={self.done}-"
        for _ in range(MAX_REDIRECTS + 1):
            try:
                resp = self.session.get(
                    self.url,
                    headers=headers,
                    stream=True,
                    allow_redirects=False,
                    verify=self.policy.verify,
                    cert=self.policy.client_cert,
                    timeout=(self.retry.connect_timeout, self.retry.read_timeout),
                )
            except requests.exceptions.SSLError as exc:
                raise _tls_error(self.policy, exc) from None
            location = resp.headers.get("Location")
            if not resp.is_redirect or not location:
                return resp
            resp.close()
            target = urljoin(self.url, location)
            check_redirect(self.policy, target)
            log.info("%s redirects to %s", redacted(self.url), redacted(target))
            self.url = target
        raise Refused(f"{redacted(self.policy.url)}: more than {MAX_REDIRECTS} redirects")

    def _accept(self, resp: requests.Response) -> None:
        """Check the status and lengths; position the sink for the body that follows."""
        status = resp.status_code
        if status == 206 and self.done:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if m and int(m.group(1)) == self.done:
                if m.group(3) != "*":
                    self.total = int(m.group(3))
                log.info("resuming %s at byte %d", redacted(self.url), self.done)
            else:
                log.warning("server answered a Range request with a wrong range: restarting")
                raise _RestartNeeded
        elif status == 200:
            if self.done:
                log.warning("server ignores Range requests: restarting the download from 0")
                self._restart()
            length = resp.headers.get("Content-Length")
            self.total = int(length) if length and length.isdigit() else None
        else:
            reason = f"{redacted(self.url)} answered HTTP {status} {resp.reason}"
            if status in (408, 429) or status >= 500:
                raise ImageError(reason)
            raise Refused(reason)
        if self.total is not None and self.total > self.limit:
            raise _too_big(self.total, self.limit)

    def _body(self, resp: requests.Response) -> None:
        for chunk in resp.raw.stream(CHUNK, decode_content=False):
            if self.done + len(chunk) > self.limit:
                raise _too_big(self.done + len(chunk), self.limit)
            self.hash.update(chunk)
            try:
                self.sink.write(chunk)
            except OSError as exc:  # the local disk, not the network: retrying won't help
                raise Refused(f"writing the image failed: {exc}") from exc
            self.done += len(chunk)
            if self.node is not None:
                self.node.report("download", self.done, self.total)

    def _attempt(self) -> None:
        """One request; returns when the whole image has arrived, raises otherwise."""
        with self._open() as resp:
            self._accept(resp)
            self._body(resp)
        if self.total is not None and self.done < self.total:
            raise ImageError(f"connection closed after {self.done} of {self.total} bytes")

    def run(self) -> Result:
        """Attempt until complete; give up after `attempts` failures in a row without
        progress, or after 10x `attempts` requests in all (a server that never finishes).
        TLS errors while connecting are final (_open); mid-body ones are transient.
        """
        failures = requests_made = 0
        pause = self.retry.backoff
        while True:
            before = self.done
            requests_made += 1
            if requests_made > 10 * self.retry.attempts:
                raise ImageError(
                    f"download of {redacted(self.policy.url)} did not complete in"
                    f" {requests_made - 1} requests"
                )
            try:
                self._attempt()
                break
            except _RestartNeeded:
                self._restart()
                continue
            except Refused:
                raise
            except (ImageError, *_TRANSIENT) as exc:
                if self.done > before:
                    failures, pause = 0, self.retry.backoff
                failures += 1
                if failures >= self.retry.attempts:
                    raise ImageError(
                        f"download of {redacted(self.policy.url)} failed after"
                        f" {failures} attempt(s) without progress: {exc}"
                    ) from None
                log.warning(
                    "download broken at byte %d (%s); retrying in %.1fs", self.done, exc, pause
                )
                time.sleep(pause)
                pause = min(max(pause * 2, 0.1), 30.0)
        if self.done == 0:
            raise ImageError(f"{redacted(self.policy.url)} delivered an empty image")
        return Result(self.done, self.hash.hexdigest())


class _RestartNeeded(Exception):
    pass


def download(
    policy: TransferPolicy,
    sink: Sink,
    limit: int,
    node: NodeContext | None = None,
    retry: RetryPolicy | None = None,
) -> Result:
    """Fetch `policy.url` into `sink`; return the size and SHA-256 of what arrived."""
    return Transfer(policy, sink, limit, node, retry).run()
