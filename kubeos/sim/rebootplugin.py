"""The simulated machine's reboot: the `kubeos_reboot` hook of a simulated node.

Registered on the node agent's own plugin host (later registration wins over the
built-in reboot), it does what asking init for a reboot does on a real node: it files
the request with the machine (`SimMachine`, in the simulation process), which then
stops the agent like a power cycle, boots the grubenv's saved entry and starts a fresh
agent - the agent's real restart path.
"""

from __future__ import annotations

import logging

from kubeos.contracts import NodeContext
from kubeos.fsutil import atomic_write
from kubeos.hooks import hookimpl

log = logging.getLogger(__name__)
#: Where a simulated node's init takes reboot requests (under its host root).
REQUEST_PATH = "/run/kubeos-sim/reboot-request"


@hookimpl
def kubeos_reboot(node: NodeContext, reason: str) -> bool:
    path = node.host_path(REQUEST_PATH)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, reason + "\n")
    log.info("simulated node %s: reboot requested (%s)", node.node_name, reason)
    return True
