"""Built-in boot switch: grubenv saved_entry=A|B (see `kubeos.node.grubenv` for why)."""

from __future__ import annotations

from kubeos.contracts import NodeContext, Partition
from kubeos.hooks import hookimpl
from kubeos.node import grubenv


@hookimpl
def kubeos_switch_boot(target: Partition, node: NodeContext) -> str:
    return grubenv.set_saved_entry(node, target.label)
