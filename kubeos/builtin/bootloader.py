"""Built-in bootloader hook (disk-upgrade issue). Not built yet: it refuses loudly."""

from __future__ import annotations

from kubeos.contracts import NodeContext, Partition
from kubeos.hooks import hookimpl


@hookimpl
def kubeos_switch_boot(target: Partition, node: NodeContext) -> str:
    raise NotImplementedError("boot switch is not built yet")
