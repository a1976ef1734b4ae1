"""The agent's main loop: read this node's OSInstance, do what is due, wait for a change.

Waiting is a watch on the one object (resumed from the resourceVersion last seen) in
short windows, so a stop request is noticed quickly and a lost watch costs one re-read.
The state lives in the OSInstance, so the loop itself keeps nothing worth losing.
"""

from __future__ import annotations

import logging
import threading
import time

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kubeos import GROUP, VERSION, __version__
from kubeos.agent.operations import AgentSettings, Operations
from kubeos.agent.osinstance import Obj
from kubeos.kube.client import api_client
from kubeos.models.osinstance import PLURAL
from kubeos.plugins import PluginHost

log = logging.getLogger(__name__)
USER_AGENT = f"kubeos-agent/{__version__}"


def agent_api_client(kubeconfig: str | None = None, server: str | None = None) -> client.ApiClient:
    """The agent's ApiClient, identifying itself so the API server can tell who called."""
    return api_client(kubeconfig=kubeconfig, server=server, user_agent=USER_AGENT)


class Agent:
    """One node's agent; `run` until `stop` is set."""

    def __init__(
        self,
        api: client.ApiClient,
        host: PluginHost,
        settings: AgentSettings,
        *,
        stop: threading.Event | None = None,
        resync: float = 30.0,
        watch_window: float = 5.0,
    ) -> None:
        self.api = api
        self.settings = settings
        self.stop = stop or threading.Event()
        self.ops = Operations(api, host, settings, self.stop)
        self.custom = client.CustomObjectsApi(api)
        self.resync = resync
        self.watch_window = watch_window

    def run(self) -> None:
        log.info(
            "kubeos-agent %s on node %s (namespace %s, host root %s)",
            __version__,
            self.settings.node_name,
            self.settings.namespace,
            self.settings.host_root,
        )
        backoff = 0.5
        while not self.stop.is_set():
            try:
                obj = self.ops.store.ensure()
                obj = self.ops.reconcile(obj)
                backoff = 0.5
                if self.ops.superseded:
                    self.stop.wait(0.2)  # re-decide on the fresh record, without spinning
                elif not self.stop.is_set():
                    self.wait_for_change(obj)
            except (ApiException, HTTPError) as exc:
                log.warning("API error (%s); retrying in %.1fs", exc, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 15.0)
            except Exception:
                # A bug must not end the agent silently: log it, back off, start over.
                log.exception("unexpected error; retrying in %.1fs", backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 15.0)
        log.info("agent on %s stopped", self.settings.node_name)

    def wait_for_change(self, obj: Obj) -> None:
        """Return when the OSInstance changes, the resync period ends, or stop is set."""
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        name = self.settings.node_name
        deadline = time.monotonic() + self.resync
        pause = 0.2
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            window = max(1, int(min(self.watch_window, left)))
            w = watch.Watch()
            opened = time.monotonic()
            try:
                for event in w.stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.settings.namespace,
                    PLURAL,
                    field_selector=f"metadata.name={name}",
                    resource_version=rv or None,
                    timeout_seconds=window,
                    _request_timeout=window + 5,
                ):
                    seen = event.get("object") or {}
                    meta = seen.get("metadata") or {} if isinstance(seen, dict) else {}
                    if event.get("type") == "ERROR":
                        return  # e.g. 410 Gone: re-read from scratch
                    if meta.get("name") != name:
                        continue
                    if str(meta.get("resourceVersion") or "") != rv:
                        return
            finally:
                w.stop()
            if time.monotonic() - opened < 0.5:
                # The stream ended at once without news (a proxy cutting it): do not
                # turn the wait into a request storm.
                self.stop.wait(pause)
                pause = min(pause * 2, 5.0)
