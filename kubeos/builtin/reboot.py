"""Built-in reboot: ask the host's init (`systemctl reboot`, else `reboot`).

When the host is mounted elsewhere (`host_root` not /), the command runs chrooted into
it so the host's own tools and init socket are used. A disk-image file is not the disk
this machine boots from, so rebooting for it would be wrong and is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kubeos.contracts import NodeContext
from kubeos.errors import KubeosError
from kubeos.hooks import hookimpl
from kubeos.runner import CommandError, run, which

log = logging.getLogger(__name__)
COMMANDS = (("systemctl", "reboot"), ("reboot",))


@hookimpl
def kubeos_reboot(node: NodeContext, reason: str) -> bool:
    if node.disk is not None and Path(node.disk).is_file():
        raise KubeosError(
            f"not rebooting this machine: the upgraded disk {node.disk} is an image file,"
            " not the disk it boots from"
        )
    chrooted = Path(node.host_root).resolve() != Path("/")
    errors: list[str] = []
    for argv in COMMANDS:
        if chrooted:
            if (
                not node.host_path(f"/usr/bin/{argv[0]}").exists()
                and not node.host_path(f"/usr/sbin/{argv[0]}").exists()
            ):
                continue
            cmd = ["chroot", str(node.host_root), *argv]
        else:
            tool = which(argv[0])
            if tool is None:
                continue
            cmd = [tool, *argv[1:]]
        log.warning("rebooting the node (%s): %s", reason, " ".join(cmd))
        try:
            run(cmd, timeout=60)
        except CommandError as exc:
            errors.append(str(exc))
            continue
        return True
    raise KubeosError("reboot failed: " + ("; ".join(errors) or "no systemctl or reboot found"))
