"""This node's OSInstance: read it, create it, and write it only conditionally.

Every write carries the resourceVersion the agent last read, so the API answers 409 if
anyone (the operator, or a stale copy of this agent) changed the object in between. On
409 the object is read again and the caller's change is re-applied to the fresh copy;
the change itself refuses (`Superseded`) when the fresh copy shows the work was
withdrawn or moved on, so an old agent can never drag the status backwards.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubeos import GROUP, VERSION
from kubeos.kube.retry import retry_call
from kubeos.models.osinstance import KIND, NODE_STATUSES, PLURAL

log = logging.getLogger(__name__)

#: Order of the phases of one dispatch; a write may never move a dispatch backwards.
PHASE_RANK = {
    "": 0,
    "draining": 1,
    "fetching": 2,
    "installing": 3,
    "rebooting": 4,
    "configuring": 5,
    "done": 6,
    "failed": 6,
}
OPERATIONS = ("upgrade", "rollback", "config")
#: Answers worth repeating the same write for (G2); 409 means re-read instead.
TRANSIENT = frozenset({429, 500, 502, 503, 504})
Obj = dict[str, Any]


class Superseded(Exception):
    """The OSInstance moved on (new dispatch, later phase): drop the current step."""


@dataclass(frozen=True)
class Work:
    """What the operator asked this node to do (the OSInstance spec)."""

    nodestatus: str
    dispatch: str
    osversion: str
    spec: Mapping[str, Any]

    @property
    def pending(self) -> bool:
        return self.nodestatus in OPERATIONS and bool(self.dispatch)

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Work:
        spec = obj.get("spec") or {}
        if not isinstance(spec, Mapping):
            spec = {}
        nodestatus = spec.get("nodestatus") or "idle"
        if nodestatus not in NODE_STATUSES:
            log.warning("OSInstance spec.nodestatus %r is unknown; treated as idle", nodestatus)
            nodestatus = "idle"
        return cls(
            nodestatus=str(nodestatus),
            dispatch=str(spec.get("dispatch") or ""),
            osversion=str(spec.get("osversion") or ""),
            spec=spec,
        )


@dataclass(frozen=True)
class Progress:
    """What this agent last recorded (the OSInstance status)."""

    dispatch: str = ""
    phase: str = ""
    reason: str = ""
    pinnedcurrent: str = ""
    sysconfigs_version: str = ""
    upgradeconfigs_version: str = ""

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Progress:
        st = obj.get("status") or {}
        if not isinstance(st, Mapping):
            st = {}

        def version(key: str) -> str:
            block = st.get(key) or {}
            return str(block.get("version") or "") if isinstance(block, Mapping) else ""

        return cls(
            dispatch=str(st.get("dispatch") or ""),
            phase=str(st.get("phase") or ""),
            reason=str(st.get("reason") or ""),
            pinnedcurrent=str(st.get("pinnedcurrent") or ""),
            sysconfigs_version=version("sysconfigs"),
            upgradeconfigs_version=version("upgradeconfigs"),
        )


class OSInstanceStore:
    """Reads and conditionally writes one OSInstance (name = node name)."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.name = name

    # -- reading -----------------------------------------------------------------------
    def get(self) -> Obj | None:
        def attempt() -> Obj | None:
            try:
                return dict(
                    self.custom.get_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, PLURAL, self.name
                    )
                )
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

        return retry_call(attempt, what=f"get OSInstance {self.name}")

    def ensure(self) -> Obj:
        """The OSInstance, created idle with empty status versions if it does not exist."""
        obj = self.get()
        if obj is not None:
            if not isinstance(obj.get("status"), Mapping):
                obj = self._init_status(obj)
            return obj
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {"nodestatus": "idle", "dispatch": ""},
        }
        try:
            created = dict(
                retry_call(
                    lambda: self.custom.create_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, PLURAL, body
                    ),
                    what=f"create OSInstance {self.name}",
                )
            )
            log.info("created OSInstance %s/%s", self.namespace, self.name)
        except ApiException as exc:
            if exc.status != 409:  # someone (a previous run) created it meanwhile
                raise
            created = self.get() or {}
        return self._init_status(created)

    def _init_status(self, obj: Obj) -> Obj:
        def init(fresh: Obj) -> bool:
            if isinstance(fresh.get("status"), Mapping):
                return False
            fresh["status"] = {
                "dispatch": "",
                "phase": "",
                "reason": "",
                "sysconfigs": {"version": ""},
                "upgradeconfigs": {"version": ""},
            }
            return True

        try:
            return self.update(obj, init, status=True)
        except Superseded:
            return self.get() or obj

    # -- writing -----------------------------------------------------------------------
    def update(self, obj: Obj, change: Callable[[Obj], bool], *, status: bool) -> Obj:
        """Apply `change` to a copy of `obj` and write it with obj's resourceVersion.

        `change` edits the copy in place and returns True to write, False when there is
        nothing to write; it raises `Superseded` when the object no longer allows it.
        On 409 the object is read again and `change` runs on the fresh copy.
        """
        current = obj
        for _ in range(20):
            body = copy.deepcopy(current)
            if not change(body):
                return current
            try:
                written = retry_call(
                    lambda body=body: self._replace(body, status=status),
                    what=f"write OSInstance {self.name}",
                    retryable=TRANSIENT,  # a 409 is not retried blindly: re-read below
                )
                return dict(written)
            except ApiException as exc:
                if exc.status == 404:
                    raise Superseded("the OSInstance was deleted") from None
                if exc.status != 409:
                    raise
                log.info("OSInstance %s changed meanwhile (409); re-reading", self.name)
            fresh = self.get()
            if fresh is None:
                raise Superseded("the OSInstance was deleted")
            current = fresh
        raise Superseded("the OSInstance keeps changing under us (20 conflicts in a row)")

    def _replace(self, body: Obj, *, status: bool) -> Any:
        """PUT the object (or its status subresource) carrying body's resourceVersion."""
        if status:
            return self.custom.replace_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, PLURAL, self.name, body
            )
        return self.custom.replace_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.name, body
        )

    def set_progress(self, obj: Obj, dispatch: str, **fields: Any) -> Obj:
        """Write status fields for `dispatch`, refusing to go back to an earlier phase.

        `fields` are status keys (`phase`, `reason`, `pinnedcurrent`, or
        `sysconfigs`/`upgradeconfigs` as {"version": v}).
        """

        def change(fresh: Obj) -> bool:
            if Work.of(fresh).dispatch != dispatch:
                raise Superseded(f"dispatch {dispatch!r} was withdrawn")
            st = fresh.setdefault("status", {})
            if not isinstance(st, dict):
                st = fresh["status"] = {}
            phase = fields.get("phase")
            if st.get("dispatch") == dispatch and phase is not None:
                have = PHASE_RANK.get(str(st.get("phase") or ""), 0)
                if st.get("phase") == "failed" or PHASE_RANK[phase] < have:
                    raise Superseded(
                        f"status of {dispatch!r} is already {st.get('phase')!r},"
                        f" not going back to {phase!r}"
                    )
            new = {**st, "dispatch": dispatch, **fields}
            if new == st:
                return False
            fresh["status"] = new
            return True

        return self.update(obj, change, status=True)

    def finish(self, obj: Obj, dispatch: str) -> Obj:
        """On success only: hand the node back (spec.nodestatus idle, dispatch cleared)."""

        def change(fresh: Obj) -> bool:
            work = Work.of(fresh)
            if work.dispatch != dispatch:
                return False  # the operator already moved on; nothing of ours to clear
            spec = fresh.setdefault("spec", {})
            spec["nodestatus"] = "idle"
            spec["dispatch"] = ""
            return True

        return self.update(obj, change, status=False)
