"""Upgrade, rollback and config on this node as resumable steps.

The OSInstance status is the step record: `dispatch` names the operation and `phase`
how far it got (draining -> fetching -> installing -> rebooting -> configuring -> done,
or failed). `reconcile` looks at spec and status and runs whatever is still due; every
step is safe to run again, so the agent may be killed anywhere - also across the reboot -
and the next start continues where the record says (issue 6 item 5).

Guards: a request out of order is refused with a clear status, not half-executed (G8);
a failed operation leaves phase=failed with the reason, an Event, the node uncordoned
and spec.nodestatus as it was (C5); only success hands the node back (`idle`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kubernetes import client

from kubeos.agent import localstate
from kubeos.agent.drain import Drainer, DrainError, DrainPolicy
from kubeos.agent.events import EventRecorder
from kubeos.agent.osinstance import PHASE_RANK, Obj, OSInstanceStore, Progress, Superseded, Work
from kubeos.configapply import apply_sysconfigs
from kubeos.contracts import NodeContext
from kubeos.contracts import Progress as ProgressCallback
from kubeos.errors import KubeosError, ValidationFailed
from kubeos.models.os import OSSpec, validate_spec
from kubeos.models.osinstance import UPGRADE_FIELDS
from kubeos.models.settings import SysConfigs
from kubeos.node import bootcheck, grubenv
from kubeos.node import upgrade as node_upgrade
from kubeos.node.layout import DiskLayout, find_layout, other_label
from kubeos.node.lock import node_lock
from kubeos.plugins import PluginHost

log = logging.getLogger(__name__)
TITLES = {"upgrade": "Upgrade", "rollback": "Rollback", "config": "Config"}
#: Progress phases of the disk steps that mean bytes are being written to the target.
INSTALL_STEPS = ("write", "install", "verify")


class StepFailed(Exception):
    """A step cannot complete: the reason goes into status, an Event and the log."""

    def __init__(self, reason: str, *, cordoned: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        #: The node may be cordoned by this operation: uncordon it (U4, node states).
        self.cordoned = cordoned


@dataclass(frozen=True)
class AgentSettings:
    node_name: str
    namespace: str = "default"
    host_root: Path = Path("/")
    proc_sys: Path = Path("/proc/sys")
    disk: Path | None = None
    work_dir: Path | None = None
    drain_timeout: float = 300.0
    #: How long to wait for the machine to go down after the reboot was requested.
    reboot_wait: float = 600.0
    max_reboot_attempts: int = 3
    #: Site settings for plugins (`--extra KEY=VALUE`), copied into every NodeContext.
    extras: Mapping[str, str] = field(default_factory=dict)


def node_spec(work: Work, host: PluginHost, name: str) -> OSSpec:
    """The OS fields the operator copied into the OSInstance, checked again on the node.

    The node treats them as hostile input: the same validation as for the OS object.
    """
    upgrade = work.spec.get("upgrade") or {}
    if not isinstance(upgrade, Mapping):
        raise ValidationFailed([], f"OSInstance {name}: spec.upgrade must be a mapping")
    raw: dict[str, Any] = {k: upgrade[k] for k in UPGRADE_FIELDS if k in upgrade}
    raw.setdefault("imagetype", "")
    raw.update(opstype=work.nodestatus, osversion=work.osversion, maxunavailable=1)
    # C2: a missing block is an empty one (it clears the recorded version).
    raw["sysconfigs"] = work.spec.get("sysconfigs") or {"version": "", "configs": []}
    if work.spec.get("upgradeconfigs") is not None:
        raw["upgradeconfigs"] = work.spec["upgradeconfigs"]
    spec, problems = validate_spec(raw, host.model_validators())
    if spec is None:
        raise ValidationFailed(problems, f"OSInstance {name} spec")
    return spec


class Operations:
    """Runs the operation the OSInstance asks for, one resumable step at a time."""

    def __init__(
        self,
        api: client.ApiClient,
        host: PluginHost,
        settings: AgentSettings,
        stop: threading.Event | None = None,
    ) -> None:
        self.host = host
        self.settings = settings
        self.stop = stop or threading.Event()
        self.store = OSInstanceStore(api, settings.namespace, settings.node_name)
        self.drainer = Drainer(api, settings.node_name)
        self.events = EventRecorder(api, settings.node_name)
        #: The last reconcile stopped because the record moved on: look again at once.
        self.superseded = False

    def context(self, pinned: str | None = None) -> NodeContext:
        s = self.settings
        return NodeContext(
            host_root=s.host_root,
            proc_sys=s.proc_sys,
            disk=s.disk,
            work_dir=s.work_dir,
            pinned_current=pinned or None,
            node_name=s.node_name,
            extras=dict(s.extras),
        )

    # -- dispatching -----------------------------------------------------------------
    def reconcile(self, obj: Obj) -> Obj:
        """Run whatever the OSInstance says is still due; return the object as last written."""
        self.superseded = False
        work, prog = Work.of(obj), Progress.of(obj)
        if not work.pending:
            return obj
        same = prog.dispatch == work.dispatch
        try:
            if same and prog.phase == "failed":
                return obj  # C5: stays until the operator dispatches something new
            if same and prog.phase == "done":
                return self._hand_back(obj, work)
            if work.nodestatus == "config":
                return self._configure(obj, work)
            if same and prog.phase == "rebooting":
                return self._after_reboot(obj, work, prog)
            if same and prog.phase == "configuring":
                return self._configure_new_root(obj, work, prog)
            return self._switch_root(obj, work, prog)
        except StepFailed as failure:
            try:
                return self._fail(work, failure)
            except Superseded as exc:
                log.info("%s: %s; re-reading", self.settings.node_name, exc)
                self.superseded = True
                return self.store.get() or obj
        except Superseded as exc:
            log.info("%s: %s; re-reading", self.settings.node_name, exc)
            self.superseded = True
            return self.store.get() or obj

    def _fail(self, work: Work, failure: StepFailed) -> Obj:
        log.error("%s %s failed: %s", work.nodestatus, work.dispatch, failure.reason)
        if failure.cordoned:
            self.drainer.uncordon()  # first: a crash after this still leaves it schedulable
        current = self.store.get()
        if current is None:
            raise Superseded("the OSInstance was deleted")
        obj = self.store.set_progress(current, work.dispatch, phase="failed", reason=failure.reason)
        self.events.post(obj, f"{TITLES[work.nodestatus]}Failed", failure.reason, warning=True)
        return obj

    def _hand_back(self, obj: Obj, work: Work) -> Obj:
        if work.nodestatus != "config":
            self.drainer.uncordon()
        return self.store.finish(obj, work.dispatch)

    def _spec(self, work: Work, *, cordoned: bool) -> OSSpec:
        try:
            return node_spec(work, self.host, self.settings.node_name)
        except ValidationFailed as exc:
            raise StepFailed(str(exc), cordoned=cordoned) from exc

    def _advance(self, obj: Obj, work: Work, phase: str, **fields: Any) -> Obj:
        """Record `phase` unless the record is already there or past it (a resumed step).

        A resumed agent redoes the idempotent actions of its step but never moves the
        record back; a stale agent whose copy is outdated still gets `Superseded`.
        """
        prog = Progress.of(obj)
        if prog.dispatch == work.dispatch and PHASE_RANK.get(prog.phase, 0) >= PHASE_RANK[phase]:
            if not fields:
                return obj
            return self.store.set_progress(obj, work.dispatch, **fields)
        return self.store.set_progress(obj, work.dispatch, phase=phase, **fields)

    # -- config (C1-C5) --------------------------------------------------------------
    def _configure(self, obj: Obj, work: Work) -> Obj:
        spec = self._spec(work, cordoned=False)
        node = self.context()
        try:
            running = bootcheck.booted_version(node)
        except KubeosError as exc:
            raise StepFailed(str(exc), cordoned=False) from exc
        if running != work.osversion:
            raise StepFailed(
                f"config is for {work.osversion!r} but the node runs {running!r};"
                " nothing was configured [C1]",
                cordoned=False,
            )
        obj = self.store.set_progress(obj, work.dispatch, phase="configuring", reason="")
        sysconfigs = spec.sysconfigs or SysConfigs()
        report = apply_sysconfigs(self.host, sysconfigs, node)
        if not report.ok:
            raise StepFailed(
                f"sysconfigs version {sysconfigs.version!r}: {report.failed};"
                " settings before it stay applied [C5]",
                cordoned=False,
            )
        obj = self.store.set_progress(
            obj, work.dispatch, phase="done", sysconfigs={"version": sysconfigs.version}
        )
        self.events.post(
            obj, "Configured", f"sysconfigs version {sysconfigs.version!r} applied", warning=False
        )
        return self._hand_back(obj, work)

    # -- upgrade / rollback before the reboot (U3-U5, R3) ------------------------------
    def _switch_root(self, obj: Obj, work: Work, prog: Progress) -> Obj:
        same = prog.dispatch == work.dispatch
        resumed = same and PHASE_RANK.get(prog.phase, 0) > 0
        spec = self._spec(work, cordoned=resumed)
        try:
            layout = find_layout(self.context())
            running = bootcheck.booted_version(self.context())
        except KubeosError as exc:
            raise StepFailed(str(exc), cordoned=resumed) from exc
        pinned = prog.pinnedcurrent if resumed and prog.pinnedcurrent in ("A", "B") else None
        pinned = pinned or layout.current
        if resumed and self._switched_earlier(work, layout, pinned):
            obj = self._advance(obj, work, "rebooting", pinnedcurrent=pinned)
            return self._after_reboot(obj, work, Progress.of(obj))
        if not resumed:
            refusal = self._refusal(work, layout, running)
            if refusal:
                raise StepFailed(refusal, cordoned=False)
            if work.nodestatus == "upgrade" and running == work.osversion:
                log.info("node already runs %r: only the sysconfigs are due", running)
                obj = self.store.set_progress(
                    obj, work.dispatch, phase="configuring", reason="", pinnedcurrent=pinned
                )
                return self._configure_new_root(obj, work, Progress.of(obj))
        obj = self._advance(obj, work, "draining", reason="", pinnedcurrent=pinned)
        node = self.context(pinned)
        try:
            self.drainer.cordon()
            self.drainer.drain(
                DrainPolicy(force=spec.evictpodforce, timeout=self.settings.drain_timeout)
            )
        except DrainError as exc:
            raise StepFailed(f"drain: {exc}", cordoned=True) from exc
        obj = self._apply_upgradeconfigs(obj, work, spec, prog, node)
        obj = self._advance(obj, work, "fetching")
        node.progress = self._installing_reporter(obj, work)
        try:
            if work.nodestatus == "upgrade":
                node_upgrade.upgrade(self.host, spec, node)
            else:
                node_upgrade.rollback(self.host, node, expected_version=work.osversion)
        except KubeosError as exc:
            raise StepFailed(str(exc), cordoned=True) from exc
        finally:
            node.progress = None
        localstate.save(node, localstate.RebootRecord(work.dispatch, localstate.boot_id(node)))
        obj = self.store.set_progress(obj, work.dispatch, phase="rebooting")
        return self._reboot(obj, work, node)

    def _switched_earlier(self, work: Work, layout: DiskLayout, pinned: str) -> bool:
        """R3, G8, U6: did an earlier run of this dispatch already switch the boot entry?

        The status may lag behind the node: the agent can die (or the API be down) between
        the boot switch and recording `rebooting`, and the node may reboot meanwhile.
        Redoing the step then would overwrite the root the node now runs from, or for a
        rollback switch back to the version just left. The node itself tells: the local
        record is written right after the switch, and a node running a root other than
        the pinned one has rebooted into the switched root.
        """
        record = localstate.load(self.context(pinned))
        if record is not None and record.dispatch == work.dispatch:
            log.warning(
                "%s %s: the boot switch was done before (local record, boot id %s);"
                " continuing with the reboot instead of redoing the step",
                work.nodestatus,
                work.dispatch,
                record.boot_id or "unknown",
            )
            return True
        if layout.current != pinned:
            log.warning(
                "%s %s: the node runs root %s, not the pinned root %s: it rebooted after"
                " the boot switch; checking the boot instead of redoing the step",
                work.nodestatus,
                work.dispatch,
                layout.current,
                pinned,
            )
            return True
        return False

    def _refusal(self, work: Work, layout: DiskLayout, running: str) -> str:
        """G8: why this request may not start on this node ('' if it may)."""
        if work.nodestatus != "rollback":
            return ""
        try:
            _, version = node_upgrade.rollback_target(layout)
        except KubeosError as exc:
            return f"{exc} [G8]"
        if version != work.osversion:
            return (
                f"rollback to {work.osversion!r} refused: the other root"
                f" {other_label(layout.current)} holds {version!r}; the node runs"
                f" {running!r} [R3, G8]"
            )
        return ""

    def _apply_upgradeconfigs(
        self, obj: Obj, work: Work, spec: OSSpec, prog: Progress, node: NodeContext
    ) -> Obj:
        """U3: upgradeconfigs go on before the upgrade; record the version applied."""
        block = spec.upgradeconfigs or SysConfigs()
        already = prog.upgradeconfigs_version == block.version and block.version != ""
        if block.configs and not already:
            report = apply_sysconfigs(self.host, block, node)
            if not report.ok:
                reason = f"upgradeconfigs version {block.version!r}: {report.failed} [U3, C5]"
                raise StepFailed(reason, cordoned=True)
        return self.store.set_progress(
            obj, work.dispatch, upgradeconfigs={"version": block.version}
        )

    def _installing_reporter(self, obj: Obj, work: Work) -> ProgressCallback:
        """A progress callback that records phase `installing` once bytes hit the target."""
        written = False

        def report(step: str, done: int, total: int | None) -> None:
            nonlocal written
            if written or not any(step.startswith(s) for s in INSTALL_STEPS):
                return
            written = True
            try:
                self._advance(self.store.get() or obj, work, "installing")
            except Exception as exc:  # G2: a status write must never abort the block I/O
                log.warning(
                    "%s: could not record phase installing (%s: %s); the install goes on",
                    work.dispatch,
                    type(exc).__name__,
                    exc,
                )

        return report

    def _reboot(self, obj: Obj, work: Work, node: NodeContext) -> Obj:
        reason = f"kubeos {work.nodestatus} to {work.osversion!r} (dispatch {work.dispatch})"
        try:
            node_upgrade.reboot(self.host, node, reason)
        except Exception as exc:  # a plugin bug counts as a failed request, too
            detail = str(exc) if isinstance(exc, KubeosError) else f"{type(exc).__name__}: {exc}"
            undone = self._undo_boot_switch(work, node)
            raise StepFailed(f"reboot: {detail}; {undone}", cordoned=True) from exc
        # A real node goes down now; until it does, do nothing that a reboot could cut.
        if self.stop.wait(self.settings.reboot_wait):
            return obj
        log.error(
            "the node did not go down %gs after the reboot request", self.settings.reboot_wait
        )
        return obj

    def _undo_boot_switch(self, work: Work, node: NodeContext) -> str:
        """G4, G8: the reboot is given up, so point the next boot back at the pinned root.

        Otherwise a node reported failed and schedulable would silently start the new
        root (for a rollback, the older one) at its next unplanned reboot. The local
        record goes with the switch; it stays when the switch-back fails, because the
        switch it stands for is then still in effect. Returns what happened, for the
        failure reason.
        """
        try:
            layout = find_layout(self.context())
            pinned = node.pinned_current or layout.current
            with node_lock(node, f"undo the boot switch of {work.dispatch}"):
                self.host.hook.kubeos_switch_boot(target=layout.partition(pinned), node=node)
            entry = grubenv.saved_entry(node)
        except Exception as exc:
            log.exception(
                "%s: pointing the next boot back at the pinned root failed", work.dispatch
            )
            return (
                f"pointing the next boot back at the pinned root failed ({type(exc).__name__}:"
                f" {exc}): the next boot would start the {work.nodestatus} target root [G4, G8]"
            )
        if entry != pinned:
            return (
                f"the grubenv reads saved_entry={entry!r} after pointing it back at root"
                f" {pinned}: the next boot would start the {work.nodestatus} target root [G4, G8]"
            )
        localstate.clear(node)
        log.warning("%s: next boot points at the pinned root %s again", work.dispatch, pinned)
        return f"the next boot starts the pinned root {pinned} again [G4, G8]"

    # -- after the reboot (U6, B3) ---------------------------------------------------
    def _after_reboot(self, obj: Obj, work: Work, prog: Progress) -> Obj:
        pinned = prog.pinnedcurrent if prog.pinnedcurrent in ("A", "B") else None
        node = self.context(pinned)
        record = localstate.load(node)
        now = localstate.boot_id(node)
        check = bootcheck.check_boot(
            self.context(), work.osversion, other_label(pinned) if pinned else None
        )
        not_yet = False
        if record is not None and record.dispatch == work.dispatch:
            if record.boot_id:
                not_yet = record.boot_id == now
            else:  # no boot id on this kernel: still on the old root means no reboot yet
                not_yet = not check.ok and check.label == pinned
        if not_yet:
            assert record is not None
            if record.attempts >= self.settings.max_reboot_attempts:
                undone = self._undo_boot_switch(work, node)
                raise StepFailed(
                    f"the node did not restart after {record.attempts} reboot requests; {undone}",
                    cordoned=True,
                )
            log.info("reboot for %s has not happened yet; requesting it again", work.dispatch)
            localstate.save(node, replace(record, attempts=record.attempts + 1))
            return self._reboot(obj, work, node)
        if not check.ok:
            raise StepFailed(f"after the reboot: {check.reason} [U6]", cordoned=True)
        obj = self.store.set_progress(obj, work.dispatch, phase="configuring", reason="")
        return self._configure_new_root(obj, work, Progress.of(obj))

    def _configure_new_root(self, obj: Obj, work: Work, prog: Progress) -> Obj:
        """U3: sysconfigs after the reboot, current/next still meaning the dispatch's (B3)."""
        spec = self._spec(work, cordoned=True)
        node = self.context(prog.pinnedcurrent if prog.pinnedcurrent in ("A", "B") else None)
        sysconfigs = spec.sysconfigs or SysConfigs()
        if sysconfigs.configs:
            report = apply_sysconfigs(self.host, sysconfigs, node)
            if not report.ok:
                reason = (
                    f"sysconfigs version {sysconfigs.version!r} after the reboot:"
                    f" {report.failed} [U3, C5]"
                )
                raise StepFailed(reason, cordoned=True)
        obj = self.store.set_progress(
            obj, work.dispatch, phase="done", reason="", sysconfigs={"version": sysconfigs.version}
        )
        self.events.post(
            obj,
            f"{TITLES[work.nodestatus]}Succeeded",
            f"node runs {work.osversion!r}",
            warning=False,
        )
        return self._hand_back(obj, work)
