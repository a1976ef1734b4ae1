"""U4: cordon the node and move its pods away through the Eviction API.

Eviction (policy/v1) is what makes PodDisruptionBudgets count: the API answers 429
while a budget forbids the disruption, and the drain retries with backoff until its
timeout. DaemonSet pods (their controller would recreate them on the same node) and
mirror pods (the kubelet owns them; the API cannot remove them) are left alone.
`evictpodforce` additionally deletes pods that no controller manages and pods whose
eviction is still blocked when the timeout expires.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubeos.errors import KubeosError
from kubeos.kube.retry import retry_call

log = logging.getLogger(__name__)
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


class DrainError(KubeosError):
    """The node could not be drained; the message names the pods and what to do."""


@dataclass(frozen=True)
class DrainPolicy:
    force: bool = False  # the OS's evictpodforce
    timeout: float = 300.0  # how long a PodDisruptionBudget may block eviction
    backoff: float = 0.5  # first wait after a 429, doubled up to max_backoff
    max_backoff: float = 5.0


@dataclass
class DrainResult:
    evicted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _key(pod: client.V1Pod) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


def _controller_kind(pod: client.V1Pod) -> str | None:
    for ref in pod.metadata.owner_references or []:
        if ref.controller:
            return str(ref.kind)
    return None


class Drainer:
    """Cordon, drain and uncordon one node."""

    def __init__(
        self,
        api: client.ApiClient,
        node: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.node = node
        self.sleep = sleep
        self.clock = clock

    # -- cordon --------------------------------------------------------------------------
    def set_unschedulable(self, value: bool) -> None:
        """Cordon (True) or uncordon (False); a no-op when already so."""
        body = {"spec": {"unschedulable": bool(value)}}
        retry_call(
            lambda: self.core.patch_node(self.node, body),
            what=f"{'cordon' if value else 'uncordon'} node {self.node}",
        )
        log.info("node %s %s", self.node, "cordoned" if value else "uncordoned")

    def cordon(self) -> None:
        self.set_unschedulable(True)

    def uncordon(self) -> None:
        self.set_unschedulable(False)

    # -- drain ---------------------------------------------------------------------------
    def pods_on_node(self) -> list[client.V1Pod]:
        pods = retry_call(
            lambda: self.core.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={self.node}"
            ),
            what=f"list pods on {self.node}",
        )
        # Filter again: the field selector is a server convenience, not a guarantee.
        return [p for p in pods.items or [] if p.spec is not None and p.spec.node_name == self.node]

    def drain(self, policy: DrainPolicy) -> DrainResult:
        result = DrainResult()
        pending: list[client.V1Pod] = []
        unmanaged: list[client.V1Pod] = []
        for pod in self.pods_on_node():
            if MIRROR_ANNOTATION in (pod.metadata.annotations or {}):
                result.skipped.append(f"{_key(pod)} (mirror pod)")
            elif _controller_kind(pod) == "DaemonSet":
                result.skipped.append(f"{_key(pod)} (DaemonSet)")
            elif _controller_kind(pod) is None:
                unmanaged.append(pod)
            else:
                pending.append(pod)
        if unmanaged and not policy.force:
            names = ", ".join(_key(p) for p in unmanaged)
            raise DrainError(
                f"pods not managed by any controller would be lost: {names};"
                " set evictpodforce: true to delete them [U4]"
            )
        for pod in unmanaged:
            self._delete(pod, result, "no controller manages it")
        deadline = self.clock() + policy.timeout
        delay = policy.backoff
        while pending:
            blocked: list[client.V1Pod] = []
            for pod in pending:
                if not self._evict(pod, result):
                    blocked.append(pod)
            pending = blocked
            if not pending:
                break
            if self.clock() >= deadline:
                names = ", ".join(_key(p) for p in pending)
                if not policy.force:
                    raise DrainError(
                        f"eviction of {names} is still refused by a PodDisruptionBudget after"
                        f" {policy.timeout:g}s; set evictpodforce: true to delete them [U4]"
                    )
                for pod in pending:
                    self._delete(pod, result, "eviction still blocked at the drain timeout")
                break
            self.sleep(min(delay, max(0.0, deadline - self.clock())))
            delay = min(delay * 2, policy.max_backoff)
        self._wait_gone(result.evicted + result.deleted, self.clock() + policy.timeout)
        log.info(
            "drained %s: evicted %d, deleted %d, skipped %d",
            self.node,
            len(result.evicted),
            len(result.deleted),
            len(result.skipped),
        )
        return result

    def _evict(self, pod: client.V1Pod, result: DrainResult) -> bool:
        """True once the pod is evicted or gone; False while a budget blocks it (429)."""
        body = client.V1Eviction(
            metadata=client.V1ObjectMeta(name=pod.metadata.name, namespace=pod.metadata.namespace)
        )
        try:
            retry_call(
                lambda: self.core.create_namespaced_pod_eviction(
                    pod.metadata.name, pod.metadata.namespace, body
                ),
                what=f"evict {_key(pod)}",
                tries=3,
                retryable=frozenset({500, 502, 503, 504}),
            )
        except ApiException as exc:
            if exc.status == 404:
                return True
            if exc.status == 429:
                log.info("eviction of %s blocked by a PodDisruptionBudget; will retry", _key(pod))
                return False
            raise
        log.info("evicted %s", _key(pod))
        result.evicted.append(_key(pod))
        return True

    def _delete(self, pod: client.V1Pod, result: DrainResult, why: str) -> None:
        try:
            retry_call(
                lambda: self.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace),
                what=f"delete {_key(pod)}",
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
        log.warning("deleted pod %s (evictpodforce: %s)", _key(pod), why)
        result.deleted.append(_key(pod))

    def _wait_gone(self, keys: list[str], deadline: float) -> None:
        """Wait until removed pods have left the node (the kubelet finishes deletion)."""
        remaining = set(keys)
        pause = 0.2
        while remaining and self.clock() < deadline:
            present = {_key(p) for p in self.pods_on_node()}
            remaining &= present
            if remaining:
                # Each look is a pod list: start quick, then ease off (a slow kubelet).
                self.sleep(min(pause, max(0.0, deadline - self.clock())))
                pause = min(pause * 2, 2.0)
        if remaining:
            log.warning("pods still terminating on %s: %s", self.node, ", ".join(sorted(remaining)))
