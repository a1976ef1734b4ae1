"""Who called what (the audit log RBAC is derived from) and injected failures (G2 tests)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

from kubeos.sim.apiserver.errors import ApiError


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
    #: The authenticated user ("" when the server requires no token).
    user: str = ""


@dataclass
class Fault:
    """Fail the next `remaining` requests matching verb/resource (and the optional filters).

    `resource` is a plural ("pods") or key ("events.events.k8s.io"); "*" matches any verb or
    resource. subresource None matches any, "" only the main resource. `delay` seconds pass
    before the answer; with status None the request then succeeds (a slow API server).
    """

    verb: str
    resource: str
    status: int | None
    remaining: int = 1
    retry_after: float | None = None
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None
    message: str = "injected fault"
    delay: float = 0.0

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


class AuditLog:
    """Thread-safe: every resource request is recorded; a matching fault fails it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[AuditRecord] = []
        self._faults: list[Fault] = []

    def record(self, rec: AuditRecord) -> None:
        with self._lock:
            self._records.append(rec)

    def raise_fault(self, rec: AuditRecord) -> None:
        """Raise the first matching fault that has runs left (and use one run up)."""
        with self._lock:
            fault = next((f for f in self._faults if f.matches(rec)), None)
            if fault is None:
                return
            fault.remaining -= 1
        if fault.delay > 0:
            time.sleep(fault.delay)
        if fault.status is None:
            return
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(fault.retry_after))  # whole seconds (RFC 9110)
        raise ApiError(fault.status, fault.message, headers=headers)

    def records(self) -> list[AuditRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def add_fault(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
