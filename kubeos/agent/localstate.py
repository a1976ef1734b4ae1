"""The little the agent must remember on the node itself across a reboot.

The OSInstance status says a dispatch is `rebooting`, but only the node can tell whether
the reboot has happened since: the kernel's boot id changes on every boot. The agent
writes the boot id it saw when it asked for the reboot into a file on the persistent
partition, which the A/B root switch does not replace.

The record is written right after the boot switch, so it also tells a restarted agent
that the switch of its dispatch is done even when the status never said `rebooting`
(the API was down or the agent died): it must reboot or check the boot, not redo the step.
When the reboot is given up and the boot switch undone, the record is cleared with it.
"""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path

from kubeos.contracts import NodeContext
from kubeos.fsutil import atomic_write

log = logging.getLogger(__name__)
STATE_PATH = "/persist/kubeos/agent-state.json"


@dataclass(frozen=True)
class RebootRecord:
    """Written after the boot switch of `dispatch`, before its reboot is requested."""

    dispatch: str
    boot_id: str  # "" when the kernel does not expose one
    attempts: int = 1


def boot_id(node: NodeContext) -> str:
    """The kernel's per-boot random id (host's /proc/sys/kernel/random/boot_id)."""
    try:
        return (node.proc_sys / "kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _path(node: NodeContext) -> Path:
    return node.host_path(STATE_PATH)


def load(node: NodeContext) -> RebootRecord | None:
    path = _path(node)
    try:
        raw = json.loads(path.read_text())
        return RebootRecord(
            dispatch=str(raw["dispatch"]),
            boot_id=str(raw.get("boot_id", "")),
            attempts=int(raw.get("attempts", 1)),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None


def save(node: NodeContext, record: RebootRecord) -> None:
    path = _path(node)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(asdict(record)) + "\n", default_mode=0o600)


def clear(node: NodeContext) -> None:
    """Forget the record: the boot switch it stands for was undone (G8)."""
    with suppress(FileNotFoundError):
        _path(node).unlink()
