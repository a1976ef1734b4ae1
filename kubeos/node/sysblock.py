"""Find the booted root partition and its disk on a real node, from /dev and /sys only.

No udev database or lsblk is needed: /sys/class/block/<name>/partition holds the
partition number and the sysfs parent directory is the whole disk. /dev/disk/by-uuid and
by-partuuid are used when udev made them, otherwise the candidates are scanned.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from kubeos.contracts import NodeContext
from kubeos.node import ext4
from kubeos.node.parttable import LayoutError, read_table
from kubeos.node.rootspec import RootSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BootedPartition:
    disk: Path  # host path of the whole disk, e.g. <host_root>/dev/vda
    number: int  # partition number the node booted from
    name: str  # kernel name of the partition, e.g. vda2


def _sys_block(node: NodeContext) -> Path:
    return node.host_path("/sys/class/block")


def _partition_names(node: NodeContext) -> list[str]:
    root = _sys_block(node)
    try:
        return sorted(p.name for p in root.iterdir() if (p / "partition").is_file())
    except OSError as exc:
        raise LayoutError(f"cannot list {root}: {exc.strerror}") from exc


def _describe(node: NodeContext, name: str) -> BootedPartition:
    entry = _sys_block(node) / name
    try:
        number = int((entry / "partition").read_text().strip())
    except (OSError, ValueError) as exc:
        raise LayoutError(f"{name} is not a partition (no {entry}/partition)") from exc
    disk_name = entry.resolve().parent.name
    return BootedPartition(node.host_path(f"/dev/{disk_name}"), number, name)


def _by_link(node: NodeContext, kind: str, value: str) -> str | None:
    link = node.host_path(f"/dev/disk/by-{kind}/{value}")
    if link.exists():
        return Path(os.path.realpath(link)).name
    return None


def find_booted(node: NodeContext, root: RootSpec) -> BootedPartition:
    """Resolve `root=` to the partition and disk it lives on; LayoutError if impossible."""
    if root.kind == "device":
        dev = node.host_path(root.value)
        if not dev.exists():
            raise LayoutError(f"root device {root.value} does not exist under {node.host_root}")
        return _describe(node, Path(os.path.realpath(dev)).name)
    name = _by_link(node, root.kind, root.value)
    if name is None:
        for candidate in _partition_names(node):
            dev = node.host_path(f"/dev/{candidate}")
            if root.kind == "uuid" and ext4.fs_uuid(dev) == root.value:
                name = candidate
                break
            if root.kind == "partuuid":
                booted = _describe(node, candidate)
                entry = read_table(booted.disk).entry(booted.number)
                if entry is not None and entry.partuuid == root.value:
                    name = candidate
                    break
    if name is None:
        raise LayoutError(f"no partition has {root}")
    log.debug("root %s is %s", root, name)
    return _describe(node, name)
