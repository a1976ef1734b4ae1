"""The only operator code that talks to the API: caches -> snapshot -> planner -> writes.

A dispatch is a conditional update of the node's OSInstance (its resourceVersion, or a
create when none exists): on 409 the object is re-read and the whole round re-decided,
so a dispatch is never duplicated; a write whose answer was lost is recognised on the
re-read because the OSInstance already carries the dispatch. Events are posted only
after the status recording them is written, so a retried round does not repeat them.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kubeos import API_VERSION, GROUP, VERSION
from kubeos.kube.events import EventRecorder
from kubeos.kube.informer import Informer
from kubeos.kube.retry import retry_call
from kubeos.models.osinstance import KIND as OSINSTANCE_KIND
from kubeos.models.osinstance import PLURAL as OSINSTANCE_PLURAL
from kubeos.operator.planner import Decision, OSPlan, Plan, Snapshot, plan

log = logging.getLogger(__name__)

OS_PLURAL = "os"
OS_KIND = "OS"
#: Statuses retried in place; a 409 is never retried blindly (re-read, re-decide).
TRANSIENT = frozenset({429, 500, 502, 503, 504})


class Conflict(Exception):
    """An OSInstance changed under a decision: re-read and decide again."""


class Controller:
    """Runs reconcile rounds while this replica leads; one round = one plan, applied."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        *,
        os_informer: Informer,
        node_informer: Informer,
        osi_informer: Informer,
        recorder: EventRecorder,
        is_leader: Callable[[], bool] = lambda: True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tz: tzinfo | None = None,
        resync: float = 30.0,
        min_round_gap: float = 0.2,
        max_backoff: float = 60.0,
    ) -> None:
        self._custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.os_informer, self.node_informer, self.osi_informer = (
            os_informer,
            node_informer,
            osi_informer,
        )
        self._recorder = recorder
        self._is_leader = is_leader
        self._clock = clock
        self._tz = tz
        self._resync = resync
        self._min_round_gap = min_round_gap
        self._max_backoff = max_backoff
        self._last_dispatch: dict[str, datetime] = {}
        self._conflicts = 0  # consecutive rounds ended by a 409
        self._last_tick = time.monotonic()
        #: set by informers, leadership changes and stop: run a round now.
        self.wake = threading.Event()
        self.rounds = 0

    # -- one round ---------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        # No copies: the planner only reads, and writes copy what they change.
        return Snapshot(
            os_objects=self.os_informer.snapshot(),
            nodes=self.node_informer.snapshot(),
            osinstances=self.osi_informer.snapshot(),
            now=self._clock(),
            last_dispatch=dict(self._last_dispatch),
            tz=self._tz,
        )

    def reconcile(self) -> float | None:
        """Plan and apply once. Returns seconds until the next round is due (None: on change).

        Raises ApiException / HTTPError when the API keeps failing after retries.
        """
        self.rounds += 1
        decided = plan(self.snapshot())
        self._forget_old_dispatches(decided)
        for os_plan in decided.per_os:
            if not self._is_leader():
                return None
            try:
                self._apply(os_plan)
            except Conflict as exc:
                # Re-decide soon, later each time if the object keeps moving under us.
                self._conflicts += 1
                delay = min(0.05 * 2 ** (self._conflicts - 1), 5.0)
                log.info("%s: %s; re-deciding in %.2fs", os_plan.key, exc, delay)
                return delay
        self._conflicts = 0
        return decided.wake_after

    def _forget_old_dispatches(self, decided: Plan) -> None:
        live = {p.dispatch for p in decided.per_os}
        for d in list(self._last_dispatch):
            if d not in live:
                del self._last_dispatch[d]

    def _apply(self, os_plan: OSPlan) -> None:
        os_obj = self.os_informer.get(os_plan.key)
        if os_obj is None:
            return  # deleted since the snapshot
        os_obj = {"apiVersion": API_VERSION, "kind": OS_KIND, **os_obj}
        done: list[Decision] = []
        try:
            for decision in os_plan.decisions:
                if not self._is_leader():
                    return
                self._write(decision)
                done.append(decision)
                if decision.kind == "dispatch":
                    self._last_dispatch[os_plan.dispatch] = self._clock()
        finally:
            for decision in done:
                self._record_decision(os_obj, os_plan, decision)
        if not self._is_leader() or not self._write_status(os_plan, os_obj):
            return
        for note in os_plan.notes:
            self._recorder.record(os_obj, note.type, note.reason, note.message)

    def _record_decision(
        self, os_obj: Mapping[str, Any], os_plan: OSPlan, decision: Decision
    ) -> None:
        if decision.kind == "dispatch":
            message = (
                f"node {decision.node}: {decision.spec.get('nodestatus')} to"
                f" {decision.spec.get('osversion')} (dispatch {os_plan.dispatch})"
            )
            self._recorder.record(os_obj, "Normal", "Dispatched", message)
        else:
            message = (
                f"node {decision.node}: back to idle; its failed operation is superseded by"
                f" dispatch {os_plan.dispatch}, which has nothing to do there"
            )
            self._recorder.record(os_obj, "Normal", "Released", message)

    # -- writes ------------------------------------------------------------------------
    def _write(self, decision: Decision) -> None:
        """Conditional create / replace of one OSInstance; Conflict when it moved."""
        current = decision.osinstance
        if current is None:
            body: dict[str, Any] = {
                "apiVersion": API_VERSION,
                "kind": OSINSTANCE_KIND,
                "metadata": {"name": decision.node, "namespace": self.namespace},
                "spec": dict(decision.spec),
            }

            def attempt() -> Any:
                return self._custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, OSINSTANCE_PLURAL, body
                )
        else:
            body = copy.deepcopy(dict(current))
            spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
            body["spec"] = {**spec, **decision.spec}
            body.pop("status", None)  # the main endpoint ignores status anyway

            def attempt() -> Any:
                return self._custom.replace_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, OSINSTANCE_PLURAL, decision.node, body
                )

        try:
            written = retry_call(attempt, what=f"osinstance {decision.node}", retryable=TRANSIENT)
        except ApiException as exc:
            if exc.status in (404, 409):
                self._refresh_osinstance(decision.node)
                raise Conflict(f"OSInstance {decision.node} changed ({exc.status})") from exc
            raise
        if isinstance(written, Mapping):
            self.osi_informer.upsert(written)
        log.info("%s node %s: %s", decision.kind, decision.node, decision.spec.get("dispatch"))

    def _refresh_osinstance(self, node: str) -> None:
        try:
            fresh = retry_call(
                lambda: self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, OSINSTANCE_PLURAL, node
                ),
                what=f"re-read osinstance {node}",
                retryable=TRANSIENT,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.osi_informer.discard(f"{self.namespace}/{node}")
            return
        if isinstance(fresh, Mapping):
            self.osi_informer.upsert(fresh)

    def _write_status(self, os_plan: OSPlan, os_obj: Mapping[str, Any]) -> bool:
        """Merge-patch the OS status subresource when it changed; True when recorded."""
        if _same_status(os_obj.get("status"), os_plan.status):
            return True
        try:
            written = retry_call(
                lambda: self._custom.patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    os_plan.namespace,
                    OS_PLURAL,
                    os_plan.name,
                    {"status": dict(os_plan.status)},
                ),
                what=f"status of OS {os_plan.key}",
                retryable=TRANSIENT,
            )
        except ApiException as exc:
            if exc.status == 404:
                return False  # the OS was deleted meanwhile
            raise
        if isinstance(written, Mapping):
            self.os_informer.upsert(written)
        return True

    def healthy(self, max_stall: float = 300.0) -> bool:
        """The loop went round recently: a wedged controller must not keep the Lease."""
        return time.monotonic() - self._last_tick < max(max_stall, 2 * self._resync)

    # -- loop --------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Reconcile on every change (and when the plan asks), never spinning: rounds are
        at least `min_round_gap` apart and API failures back off exponentially (I2)."""
        threading.Thread(
            target=lambda: (stop.wait(), self.wake.set()), name="controller-stop", daemon=True
        ).start()
        backoff = self._min_round_gap
        while not stop.is_set():
            self._last_tick = time.monotonic()
            self.wake.clear()
            timeout: float | None = self._resync
            if self._is_leader() and self._synced():
                try:
                    wait = self.reconcile()
                    backoff = self._min_round_gap
                    if wait is not None:
                        timeout = min(wait, self._resync)
                except (ApiException, HTTPError, OSError) as exc:
                    backoff = min(max(backoff * 2, 0.5), self._max_backoff)
                    log.warning("reconcile failed (%s); next try in %.1fs", exc, backoff)
                    timeout = backoff
                except Exception:  # a bug must not stop every rollout: log, back off, retry
                    backoff = min(max(backoff * 2, 0.5), self._max_backoff)
                    log.exception("reconcile crashed; next try in %.1fs", backoff)
                    timeout = backoff
            self.wake.wait(timeout)
            stop.wait(self._min_round_gap)

    def _synced(self) -> bool:
        return all(i.synced for i in (self.os_informer, self.node_informer, self.osi_informer))


def _same_status(current: Any, wanted: Mapping[str, Any]) -> bool:
    """A merge patch deletes keys set to None: compare with those keys absent."""
    have = {k: v for k, v in (current or {}).items() if v is not None}
    want = {k: v for k, v in wanted.items() if v is not None}
    return have == want
