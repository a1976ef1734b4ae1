"""Built-in partition hook (disk-upgrade issue). Not built yet: it refuses loudly."""

from __future__ import annotations

from kubeos.contracts import FetchedImage, NodeContext, Partition
from kubeos.hooks import hookimpl


@hookimpl
def kubeos_install_partition(
    image: FetchedImage, target: Partition, node: NodeContext
) -> Partition:
    raise NotImplementedError("partition install is not built yet")
