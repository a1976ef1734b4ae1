"""Kubernetes Events about this node's OSInstance, so `kubectl describe` shows what happened."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client

from kubeos import API_VERSION
from kubeos.kube import events
from kubeos.models.osinstance import KIND

COMPONENT = "kubeos-agent"


class EventRecorder:
    """Posts Events for one OSInstance; best effort (an Event must never fail the work)."""

    def __init__(self, api: client.ApiClient, node: str) -> None:
        self.node = node
        self._recorder = events.EventRecorder(api, COMPONENT, host=node)

    def post(self, obj: Mapping[str, Any], reason: str, message: str, warning: bool) -> None:
        meta = dict(obj.get("metadata") or {})
        meta.setdefault("name", self.node)
        involved = {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta}
        self._recorder.record(involved, "Warning" if warning else "Normal", reason, message)
