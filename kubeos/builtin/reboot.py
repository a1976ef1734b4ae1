"""Built-in reboot hook (disk-upgrade issue). Not built yet: it refuses loudly."""

from __future__ import annotations

from kubeos.contracts import NodeContext
from kubeos.hooks import hookimpl


@hookimpl
def kubeos_reboot(node: NodeContext, reason: str) -> bool:
    raise NotImplementedError("reboot is not built yet")
