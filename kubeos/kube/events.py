"""Post core/v1 Events on an object: best effort, never blocking the caller's work."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kubeos.kube.retry import retry_call

log = logging.getLogger(__name__)
MAX_MESSAGE = 1024  # the API server truncates longer messages anyway


class EventRecorder:
    """Creates Events reported by `component` (e.g. kubeos-operator) about objects."""

    def __init__(self, api: client.ApiClient, component: str, host: str = "") -> None:
        self._core = client.CoreV1Api(api)
        self.component = component
        self.host = host

    def record(self, involved: Mapping[str, Any], etype: str, reason: str, message: str) -> None:
        """`involved` is the object's apiVersion/kind/metadata (a dict as the API returns it)."""
        meta = involved.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name')}.{uuid.uuid4().hex[:16]}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": etype,
            "reason": reason,
            "message": message[:MAX_MESSAGE],
            "source": {"component": self.component, "host": self.host or None},
            "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            retry_call(
                lambda: self._core.create_namespaced_event(namespace, body),
                what=f"event {reason} on {meta.get('name')}",
                tries=4,
            )
        except (ApiException, HTTPError, OSError) as exc:
            log.warning("could not post event %s on %s: %s", reason, meta.get("name"), exc)
