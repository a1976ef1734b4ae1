"""After a reboot: did the node come up on the expected root, running the expected version?

The running version is PRETTY_NAME of the live root's os-release (U6); the running root is
the partition `root=` names. Both are compared with what the operation asked for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kubeos.contracts import NodeContext
from kubeos.errors import KubeosError
from kubeos.node.layout import find_layout
from kubeos.node.osrelease import MAX_OS_RELEASE, pretty_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BootCheck:
    ok: bool
    reason: str
    label: str  # the root the node runs from ("" if it could not be found)
    version: str  # PRETTY_NAME of the running system ("" if unreadable)


def booted_version(node: NodeContext) -> str:
    """PRETTY_NAME of the running system's os-release ('' if it has none)."""
    path = node.host_path(node.os_release_path)
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_OS_RELEASE).decode(errors="replace")
    except OSError as exc:
        raise KubeosError(f"cannot read {path}: {exc.strerror}") from exc
    return pretty_name(text)


def check_boot(
    node: NodeContext, expected_version: str | None, expected_label: str | None = None
) -> BootCheck:
    """Compare the running root and version with the expected ones; never raises."""
    label = version = ""
    problems: list[str] = []
    try:
        label = find_layout(node).current
    except KubeosError as exc:
        problems.append(f"cannot tell which root the node booted from: {exc}")
    version_read = True
    try:
        version = booted_version(node)
    except KubeosError as exc:
        version_read = False
        problems.append(str(exc))
    if expected_label and label and label != expected_label:
        problems.append(f"booted root {label}, expected root {expected_label}")
    if expected_version and version_read and version != expected_version:
        problems.append(f"running {version or '(no PRETTY_NAME)'!r}, expected {expected_version!r}")
    if problems:
        reason = "; ".join(problems)
        log.error("boot check failed: %s", reason)
        return BootCheck(False, reason, label, version)
    reason = f"running {version!r} from root {label}"
    log.info("boot check passed: %s", reason)
    return BootCheck(True, reason, label, version)
