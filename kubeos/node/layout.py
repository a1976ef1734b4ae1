"""Which disk holds the A/B roots, where each root is, and which one the node booted from.

A KubeOS disk has partition 1 boot/EFI, 2 root A, 3 root B, 4 persist (G5: two roots
only). The booted root comes from `root=` of the kernel command line (a device, UUID= or
PARTUUID=); upgrades always write the other one. `NodeContext.disk` pins the disk, which
may be a disk-image file: partitions are then byte ranges at the offsets of its table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from kubeos.contracts import NodeContext, Partition
from kubeos.node import ext4
from kubeos.node.parttable import LayoutError, PartitionTable, TableEntry, read_table
from kubeos.node.rootspec import RootSpec, parse_root
from kubeos.node.sysblock import find_booted

log = logging.getLogger(__name__)

ROOT_NUMBERS = {"A": 2, "B": 3}
LABELS = {n: label for label, n in ROOT_NUMBERS.items()}

__all__ = ["ROOT_NUMBERS", "DiskLayout", "LayoutError", "find_layout", "other_label"]


def other_label(label: str) -> str:
    if label not in ROOT_NUMBERS:
        raise LayoutError(f"root label must be A or B (got {label!r})")
    return "B" if label == "A" else "A"


@dataclass(frozen=True)
class DiskLayout:
    disk: Path
    a: Partition
    b: Partition
    #: "A" or "B": the root the running system was booted from.
    current: str
    root: RootSpec

    def partition(self, label: str) -> Partition:
        other_label(label)  # validates
        return self.a if label == "A" else self.b

    @property
    def current_partition(self) -> Partition:
        return self.partition(self.current)

    @property
    def other(self) -> Partition:
        """The inactive root: where an upgrade writes and where a rollback goes."""
        return self.partition(other_label(self.current))


def read_cmdline(node: NodeContext) -> str:
    path = node.host_path(node.cmdline_path)
    try:
        return path.read_text()
    except OSError as exc:
        raise LayoutError(f"cannot read the kernel command line {path}: {exc.strerror}") from exc


def _device_name(root: RootSpec, entry: TableEntry, is_block: bool) -> str:
    if root.kind == "device" and root.number:
        return root.sibling(entry.number)
    if is_block:
        return f"/dev/{Path(entry.node).name}"
    return f"PARTUUID={entry.partuuid}" if entry.partuuid else ""


def _partition(label: str, table: PartitionTable, root: RootSpec, is_block: bool) -> Partition:
    entry = table.entry(ROOT_NUMBERS[label])
    if entry is None:
        raise LayoutError(
            f"{table.device} has no partition {ROOT_NUMBERS[label]} (root {label}): not a"
            " KubeOS A/B disk (1 boot, 2 root A, 3 root B, 4 persist) [G5]"
        )
    node = Path(entry.node)
    if is_block and node.exists() and node.is_block_device():
        path, offset = node, 0
    else:
        path, offset = table.device, entry.start
    return Partition(
        label=label,
        number=entry.number,
        path=path,
        offset=offset,
        size=entry.size,
        device=_device_name(root, entry, is_block),
    )


def _booted_number(root: RootSpec, table: PartitionTable, a: Partition, b: Partition) -> int:
    if root.kind == "device":
        if not root.number:
            raise LayoutError(f"root={root.value} does not name a partition of {table.device}")
        return root.number
    for part in (a, b):
        entry = table.entry(part.number)
        assert entry is not None
        if root.kind == "partuuid" and entry.partuuid == root.value:
            return part.number
        if root.kind == "uuid" and ext4.fs_uuid(part.path, part.offset) == root.value:
            return part.number
    raise LayoutError(f"neither root A nor root B of {table.device} has {root}")


def find_layout(node: NodeContext) -> DiskLayout:
    """Discover the A/B layout of the node; LayoutError naming what does not fit."""
    root = parse_root(read_cmdline(node))
    booted: int | None = None
    if node.disk is not None:
        disk = Path(node.disk)
        if not disk.exists():
            raise LayoutError(f"disk {disk} does not exist")
    else:
        found = find_booted(node, root)
        disk, booted = found.disk, found.number
    table = read_table(disk)
    is_block = disk.is_block_device()
    a = _partition("A", table, root, is_block)
    b = _partition("B", table, root, is_block)
    if booted is None:
        booted = _booted_number(root, table, a, b)
    if booted not in LABELS:
        raise LayoutError(
            f"the node booted from partition {booted} ({root}), which is neither root A (2)"
            " nor root B (3)"
        )
    layout = DiskLayout(disk=disk, a=a, b=b, current=LABELS[booted], root=root)
    log.debug("layout: disk %s, booted %s (%s)", disk, layout.current, root)
    return layout
