"""Lease-based leader election (coordination.k8s.io/v1), so one operator replica acts.

Expiry is judged by this process's own clock from when it last saw the lease change,
never by comparing clocks across machines. Every write is conditional on the lease's
resourceVersion, so two candidates can never both think they took it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class LeaderElector:
    """Acquire and renew a Lease; `is_leader()` answers whether this replica may act.

    Leadership is given up when the lease could not be renewed for `renew_deadline`
    seconds (before others may take it at `lease_duration`), when `healthy()` says the
    protected work is stuck (so a standby takes over), and released on stop.
    """

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_change: Callable[[bool], None] | None = None,
        healthy: Callable[[], bool] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not renew_deadline < lease_duration:
            raise ValueError("renew_deadline must be shorter than lease_duration")
        self._api = client.CoordinationV1Api(api)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._on_change = on_change or (lambda leading: None)
        #: False when the work this lease protects is stuck: then hand the lease over.
        self._healthy = healthy or (lambda: True)
        self._mono = monotonic
        self._leading = False
        self._last_renew = 0.0  # monotonic time of our last successful write
        self._observed: tuple[object, ...] | None = None
        self._observed_at = 0.0

    def is_leader(self) -> bool:
        """True only while a renewal succeeded within renew_deadline."""
        return self._leading and self._mono() - self._last_renew < self.renew_deadline

    def run(self, stop: threading.Event) -> None:
        """Campaign and renew until `stop`; then release the lease if held."""
        try:
            while not stop.is_set():
                if not self._healthy():
                    if self._leading:
                        log.error("%s: the work loop is stalled; giving up lease %s/%s",
                                  self.identity, self.namespace, self.name)
                        self.release()
                    stop.wait(self.retry_period)
                    continue
                try:
                    ok = self.try_acquire_or_renew()
                except (ApiException, HTTPError, OSError) as exc:
                    log.info("lease %s/%s: %s", self.namespace, self.name, exc)
                    ok = False
                if ok:
                    self._set_leading(True)
                elif self._leading and not self.is_leader():
                    log.warning("lease %s/%s: could not renew within %.0fs, stepping down",
                                self.namespace, self.name, self.renew_deadline)
                    self._set_leading(False)
                stop.wait(self.retry_period)
        finally:
            self.release()

    def _set_leading(self, leading: bool) -> None:
        if leading != self._leading:
            self._leading = leading
            log.info("%s %s leadership of lease %s/%s", self.identity,
                     "acquired" if leading else "lost", self.namespace, self.name)
            self._on_change(leading)

    def try_acquire_or_renew(self) -> bool:
        """One election step: create, renew, or take over an expired/released lease."""
        now = _now()
        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                spec=self._spec(now, now, transitions=0),
            )
            try:
                self._api.create_namespaced_lease(self.namespace, body)
            except ApiException as exc2:
                if exc2.status == 409:
                    return False  # someone else created it first
                raise
            self._last_renew = self._mono()
            return True
        spec = lease.spec or client.V1LeaseSpec()
        holder = spec.holder_identity or ""
        record = (holder, spec.renew_time, spec.acquire_time, spec.lease_transitions)
        if record != self._observed:
            self._observed, self._observed_at = record, self._mono()
        duration = spec.lease_duration_seconds or self.lease_duration
        if holder and holder != self.identity and self._mono() - self._observed_at < duration:
            return False  # held by another and not expired by our own clock
        transitions = spec.lease_transitions or 0
        if holder == self.identity:
            new_spec = self._spec(spec.acquire_time or now, now, transitions)
        else:
            new_spec = self._spec(now, now, transitions + 1)
        lease.spec = new_spec
        try:
            self._api.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as exc:
            if exc.status == 409:
                return False  # lost the race; re-read next period
            raise
        self._last_renew = self._mono()
        return True

    def _spec(self, acquired: datetime, renewed: datetime, transitions: int) -> client.V1LeaseSpec:
        return client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=max(1, round(self.lease_duration)),
            acquire_time=acquired,
            renew_time=renewed,
            lease_transitions=transitions,
        )

    def release(self) -> None:
        """Hand the lease back at once so a standby takes over without waiting (SIGTERM)."""
        if not self._leading:
            return
        self._set_leading(False)
        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = _now()
            self._api.replace_namespaced_lease(self.name, self.namespace, lease)
            log.info("%s released lease %s/%s", self.identity, self.namespace, self.name)
        except (ApiException, HTTPError, OSError) as exc:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)
