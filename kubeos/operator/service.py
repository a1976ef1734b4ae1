"""The operator process: informers + leader election + controller, stopped by one Event.

    api = kubeos.kube.client.api_client(server=url)
    Operator(api, "default").run(stop_event)      # blocks until stop_event is set
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import tzinfo
from typing import Any

from kubernetes import client

from kubeos import GROUP, VERSION, __version__
from kubeos.kube.events import EventRecorder
from kubeos.kube.informer import Informer, ListCall
from kubeos.kube.leader import LeaderElector
from kubeos.models.osinstance import PLURAL as OSINSTANCE_PLURAL
from kubeos.operator.controller import OS_PLURAL, Controller

log = logging.getLogger(__name__)

USER_AGENT = f"kubeos-operator/{__version__}"
DEFAULT_LEASE_NAME = "kubeos-operator"


def default_identity() -> str:
    """Unique per process, readable in the Lease: host name plus a random suffix."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


Transform = Callable[[dict[str, Any]], dict[str, Any]]


def slim_node(node: dict[str, Any]) -> dict[str, Any]:
    """Keep only what the planner reads (name, labels, osImage): nodes are large objects
    (images, conditions) and a fleet's worth would otherwise sit in memory twice."""
    meta = node.get("metadata") or {}
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "labels": meta.get("labels") or {},
            "resourceVersion": meta.get("resourceVersion"),
        },
        "status": {"nodeInfo": {"osImage": info.get("osImage", "")}},
    }


class Operator:
    """One operator replica. Only the replica holding the Lease writes anything.

    `api` should be this operator's own ApiClient: its user agent is set to
    "kubeos-operator/<version>" so the API server can attribute every call.
    Every replica keeps its caches warm, so a standby takes over without a cold start.
    """

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str = "default",
        *,
        identity: str | None = None,
        lease_name: str = DEFAULT_LEASE_NAME,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        resync: float = 30.0,
        min_round_gap: float = 0.2,
        watch_timeout: int = 300,
        tz: tzinfo | None = None,
    ) -> None:
        api.user_agent = USER_AGENT
        self.namespace = namespace
        self.identity = identity or default_identity()
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)

        def informer(name: str, call: ListCall, transform: Transform | None = None) -> Informer:
            return Informer(
                name, call, on_change=self._poke, transform=transform, watch_timeout=watch_timeout
            )

        self.os_informer = informer(
            "os",
            functools.partial(
                custom.list_namespaced_custom_object, GROUP, VERSION, namespace, OS_PLURAL
            ),
        )
        self.node_informer = informer("nodes", core.list_node, slim_node)
        self.osi_informer = informer(
            "osinstances",
            functools.partial(
                custom.list_namespaced_custom_object, GROUP, VERSION, namespace, OSINSTANCE_PLURAL
            ),
        )
        self.controller = Controller(
            api,
            namespace,
            os_informer=self.os_informer,
            node_informer=self.node_informer,
            osi_informer=self.osi_informer,
            recorder=EventRecorder(api, "kubeos-operator", self.identity),
            is_leader=self.is_leader,
            tz=tz,
            resync=resync,
            min_round_gap=min_round_gap,
        )
        self.elector = LeaderElector(
            api,
            namespace,
            lease_name,
            self.identity,
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
            on_change=lambda leading: self._poke(),
            healthy=self.controller.healthy,
        )

    @property
    def informers(self) -> tuple[Informer, Informer, Informer]:
        return self.os_informer, self.node_informer, self.osi_informer

    def is_leader(self) -> bool:
        return self.elector.is_leader()

    def _poke(self) -> None:
        # Informers start only in run(), after __init__ has built the controller.
        self.controller.wake.set()

    def run(self, stop: threading.Event) -> None:
        """Block until `stop` is set; then stop watching and release the Lease."""
        log.info("operator %s starting in namespace %s", self.identity, self.namespace)
        for inf in self.informers:
            inf.start()
        elector = threading.Thread(
            target=self.elector.run, args=(stop,), name="leader-election", daemon=True
        )
        elector.start()
        try:
            self.controller.run(stop)
        finally:
            stop.set()
            elector.join(self.elector.retry_period + 10)
            for inf in self.informers:
                inf.stop()
            log.info("operator %s stopped", self.identity)
